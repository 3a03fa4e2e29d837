package storectx

// TestingStealSpare is the shim's test hook for the last fallback of a
// closing suspend (see unwind_test.go).
var TestingStealSpare = testingStealSpare
