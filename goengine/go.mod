module gollm/goengine

go 1.26
