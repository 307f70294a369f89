"""Config loading: every mistake is one ConfigError naming the file and the key."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT, SPEC
from jaxmodel.config import ConfigError, ModelConfig, load_config, param_count
from jaxmodel.gguf_io import tensor_shapes

SEED = {
    "vocab_size": 32768, "dim": 768, "n_layers": 12, "n_heads": 12, "n_kv_heads": 4, "ffn_dim": 1536,
    "context_length": 2048, "rope_theta": 10000.0, "norm_eps": 1e-5, "tie_embeddings": True,
}


def write(tmp_path, document, name="c.yaml"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def test_every_shipped_config_loads():
    paths = sorted(CONFIGS.glob("*.yaml"))
    assert {p.name for p in paths} >= {"gollm-85m.yaml", "demo.yaml", "goldens-gqa.yaml", "goldens-mha.yaml"}
    for path in paths:
        from jaxmodel.config import FINETUNE_MODEL_KEYS, TrainConfig, load_finetune_config

        if set(yaml.safe_load(path.read_text()).get("model") or {}) - set(FINETUNE_MODEL_KEYS):
            assert isinstance(load_config(path), ModelConfig)
        else:  # a fine-tuning config: the model comes from --from, bar the keys it may change
            assert isinstance(load_finetune_config(path)[0], TrainConfig)


def test_seed_config_is_the_spec_seed():
    config = load_config(CONFIGS / "gollm-85m.yaml")
    assert config == ModelConfig(**SEED)
    assert (config.head_dim, config.kv_dim, config.n_rep) == (64, 256, 3)


def test_seed_parameter_count_matches_spec():
    count = param_count(load_config(CONFIGS / "gollm-85m.yaml"))
    assert f"{count:,}" in (SPEC / "model.md").read_text(), "spec/model.md must state the seed's parameter count"
    assert 84e6 < count < 88e6


@pytest.mark.parametrize("name", ["gollm-85m.yaml", "demo.yaml", "goldens-gqa.yaml", "goldens-mha.yaml"])
def test_parameter_count_equals_tensor_sizes(name):
    # Two independent routes to the same number: the formula and the tensor table.
    config = load_config(CONFIGS / name)
    total = sum(int(np.prod(shape)) for shape in tensor_shapes(config).values())
    assert param_count(config) == total


def test_cli_prints_parameter_count():
    out = subprocess.run(
        [sys.executable, "-m", "jaxmodel.config", str(CONFIGS / "gollm-85m.yaml")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    assert re.search(r"parameters\s+86,526,720", out)


def test_cli_json_is_the_checked_model_section():
    out = subprocess.run(
        [sys.executable, "-m", "jaxmodel.config", "--json", str(CONFIGS / "gollm-85m.yaml")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    assert ModelConfig(**json.loads(out)) == load_config(CONFIGS / "gollm-85m.yaml")


def test_cli_reports_errors_without_traceback(tmp_path):
    path = write(tmp_path, {"model": {**SEED, "dim": 770}})
    run = subprocess.run([sys.executable, "-m", "jaxmodel.config", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "model.dim (770)" in run.stderr


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dropout": 0.1}, r"unknown key model\.dropout"),
        ({"dim": "768"}, r"model\.dim: expected an integer, found str"),
        ({"n_layers": True}, r"model\.n_layers: expected an integer, found bool"),
        ({"n_layers": 12.0}, r"model\.n_layers: expected an integer, found float"),
        ({"tie_embeddings": 1}, r"model\.tie_embeddings: expected true or false"),
        ({"rope_theta": "ten thousand"}, r"model\.rope_theta: expected a number"),
        ({"dim": 770}, r"model\.dim \(770\) must be divisible by model\.n_heads \(12\)"),
        ({"n_kv_heads": 5}, r"model\.n_heads \(12\) must be divisible by model\.n_kv_heads \(5\)"),
        ({"dim": 36, "n_heads": 12, "n_kv_heads": 4}, r"head_dim .* = 3 must be even"),
        ({"n_layers": 0}, r"model\.n_layers must be positive"),
        ({"norm_eps": -1e-5}, r"model\.norm_eps must be a positive finite number"),
        ({"rope_theta": float("inf")}, r"model\.rope_theta must be a positive finite number"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, change, message):
    path = write(tmp_path, {"model": {**SEED, **change}})
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_missing_key(tmp_path):
    values = dict(SEED)
    del values["ffn_dim"]
    with pytest.raises(ConfigError, match=r"missing key model\.ffn_dim"):
        load_config(write(tmp_path, {"model": values}))


def test_yaml_style_exponent_is_a_number(tmp_path):
    # PyYAML reads `1e-5` (no dot) as a string; it is clearly meant as a number.
    text = yaml.safe_dump({"model": {**SEED, "norm_eps": "X"}}).replace("X", "1e-5")
    assert load_config(write(tmp_path, text)).norm_eps == 1e-5


@pytest.mark.parametrize(
    "document, message",
    [
        ("model: [1, 2]\n", r"model: expected a mapping of fields, found list"),
        ("- just a list\n", r"expected a mapping with a 'model:' section"),
        ("optimizer: {}\n", r"unknown top-level key 'optimizer'"),
        ("{}\n", r"missing the 'model:' section"),
        ("model: {dim: [\n", r"not valid YAML"),
    ],
)
def test_bad_documents(tmp_path, document, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, document))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_train_section_defaults_and_checks(tmp_path):
    from jaxmodel.config import TrainConfig, load_train_config

    _, train = load_train_config(write(tmp_path, {"model": SEED}))
    assert train == TrainConfig()
    _, train = load_train_config(write(tmp_path, {"model": SEED, "train": {"steps": 50, "learning_rate": "1e-3"}}))
    assert (train.steps, train.learning_rate, train.batch_size) == (50, 1e-3, 16)
    for change, message in [
        ({"stepz": 5}, r"unknown key train\.stepz"),
        ({"steps": 0}, r"train\.steps must be positive"),
        ({"batch_size": 10, "grad_accum": 4}, r"train\.batch_size \(10\) must be divisible by train\.grad_accum \(4\)"),
        ({"compute_dtype": "float16"}, r"train\.compute_dtype must be auto, float32 or bfloat16"),
        ({"beta2": 1.5}, r"train\.beta2 must be in \[0, 1\]"),
        ({"seed": "one"}, r"train\.seed: expected an integer"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_train_config(write(tmp_path, {"model": SEED, "train": change}))


def test_overrides_are_checked_like_the_file(tmp_path):
    from jaxmodel.config import load_train_config

    path = write(tmp_path, {"model": SEED})
    model, train = load_train_config(path, ["train.steps=7", "model.n_layers=2", "train.learning_rate=1e-3"])
    assert (train.steps, model.n_layers, train.learning_rate) == (7, 2, 1e-3)
    for override, message in [
        ("steps=7", r"expected model\.KEY=VALUE or train\.KEY=VALUE"),
        ("train.stepz=7", r"unknown key train\.stepz"),
        ("model.dim=770", r"model\.dim \(770\) must be divisible"),
        ("train.steps=[", r"not valid YAML"),
    ]:
        # The error names the override the user typed, not the file it was applied to.
        with pytest.raises(ConfigError, match=re.escape(f"--set {override}: ") + ".*" + message) as err:
            load_train_config(path, [override])
        assert str(path) not in str(err.value)


def test_errors_blame_the_file_or_the_first_override_that_breaks_it(tmp_path):
    from jaxmodel.config import load_train_config

    broken = write(tmp_path, {"model": SEED | {"dim": 770}}, name="broken.yaml")
    with pytest.raises(ConfigError, match=r"broken\.yaml: model\.dim \(770\)"):
        load_train_config(broken, ["train.steps=7"])
    # an override may repair the file: the whole is what counts
    model, _ = load_train_config(broken, ["model.dim=768"])
    assert model.dim == 768
    path = write(tmp_path, {"model": SEED})
    with pytest.raises(ConfigError, match=r"^--set model\.n_heads=5: model\.dim \(768\) must be divisible by model\.n_heads \(5\)"):
        load_train_config(path, ["train.steps=7", "model.n_heads=5", "model.n_kv_heads=5"])


def test_eval_every_zero_turns_validation_off(tmp_path):
    from jaxmodel.config import load_train_config

    _, train = load_train_config(write(tmp_path, {"model": SEED}), ["train.eval_every=0"])
    assert train.eval_every == 0
    with pytest.raises(ConfigError, match=r"train\.eval_every must be >= 0"):
        load_train_config(write(tmp_path, {"model": SEED}), ["train.eval_every=-1"])


def test_a_finetuning_config_may_change_only_the_context(tmp_path):
    from jaxmodel.config import TrainConfig, load_finetune_config

    path = tmp_path / "sft.yaml"
    path.write_text("model:\n  context_length: 384\ntrain:\n  steps: 7\n")
    tc, changes = load_finetune_config(path)
    assert (tc.steps, changes) == (7, {"context_length": 384})
    assert load_finetune_config(None, ["model.context_length=512"])[1] == {"context_length": 512}
    assert load_finetune_config(None)[1] == {} and isinstance(load_finetune_config(None)[0], TrainConfig)
    with pytest.raises(ConfigError, match=r"--set model\.dim=64: the model comes from --from, and model\.dim cannot be changed"):
        load_finetune_config(path, ["model.dim=64"])
    with pytest.raises(ConfigError, match=r"model\.context_length must be positive, found 0"):
        load_finetune_config(None, ["model.context_length=0"])
    with pytest.raises(ConfigError, match=r"model\.context_length: expected an integer"):
        load_finetune_config(None, ["model.context_length=long"])
