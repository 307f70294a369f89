package gguf_test

import (
	"fmt"
	"log"

	"gollm/goengine/gguf"
)

// Open a model file, read typed metadata and a tensor.
func ExampleOpen() {
	f, err := gguf.Open("../../goldens/gqa.gguf")
	if err != nil {
		log.Fatal(err) // e.g. gguf: model.gguf: header: version: expected 3, found 2
	}
	defer f.Close()

	arch, _ := f.String("general.architecture")
	layers, _ := f.Uint("llama.block_count")
	eps, _ := f.Float("llama.attention.layer_norm_rms_epsilon")
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	fmt.Println(arch, layers, eps, len(tokens))

	t, _ := f.Tensor("blk.0.attn_k.weight")
	fmt.Println(t.Type, t.Dims, t.Shape()) // GGUF ne order, then row-major shape
	w, err := f.Float32s(t.Name)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(w))

	_, err = f.Uint("tokenizer.ggml.model")
	fmt.Println(err)
	// Output:
	// llama 2 1e-05 320
	// F32 [64 32] [32 64]
	// 2048
	// gguf: ../../goldens/gqa.gguf: key "tokenizer.ggml.model": type: expected an integer, found STRING
}

// Goldens containers hold I32 token ids and typed metadata arrays.
func ExampleFile_Int32s() {
	f, err := gguf.Open("../../goldens/gqa.activations.gguf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	tokens, _ := f.Int32s("tokens")
	fmt.Println(len(tokens), tokens[0])
	// Output: 24 312
}
