package model

// What the external tests (package model_test, which may import the readable
// path, package llama, that itself imports model) need of the internal ones.
var AtEachKernelLevel = atEachKernelLevel
