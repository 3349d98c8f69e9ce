package vault

// SetFHIRScanLimit lowers the FHIR scan limit for a test and returns a
// function restoring it.
func SetFHIRScanLimit(n int64) (restore func()) {
	old := fhirScanLimit
	fhirScanLimit = n
	return func() { fhirScanLimit = old }
}
