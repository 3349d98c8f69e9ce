package consent

// SigChecks returns how many entry signatures were checked so far.
func SigChecks() int64 { return sigChecks.Load() }
