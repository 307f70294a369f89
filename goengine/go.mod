module gollm/goengine

go 1.22.0
