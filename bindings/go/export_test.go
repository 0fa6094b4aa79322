package mcrs

// SetSoloHook makes f see the op of each call that runs the event loop on
// its own goroutine (driver.solo); nil removes it. Tests only.
func SetSoloHook(f func(op string)) { soloHook = f }
