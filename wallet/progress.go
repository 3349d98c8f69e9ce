package wallet

// Progress: the small output interface through which long use cases report
// how far they are, to whatever display the caller has.

// Progress follows a long operation made of steps, such as an import of
// several records. The wallet calls Start before a step with its name (an
// imported record's file name) and its size in bytes (-1 when unknown),
// Add as bytes are done, and Done when the step ends, whether it succeeded
// or not. The CLI draws a bar on a terminal; the wallet draws nothing.
//
// A Progress is also a vault.Progress (Add), so it goes straight to the
// vault.
type Progress interface {
	Start(step string, total int64)
	Add(n int64)
	Done()
}
