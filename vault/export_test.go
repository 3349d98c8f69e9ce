package vault

// SetFHIRScanLimit lowers the FHIR scan limit for a test and returns a
// function restoring it.
func SetFHIRScanLimit(n int64) (restore func()) {
	old := fhirScanLimit
	fhirScanLimit = n
	return func() { fhirScanLimit = old }
}

// ShareHeaderFor exposes the share header for tests.
func ShareHeaderFor(m *Manifest, i int) []byte {
	return shareHeader(m.RecordID, i, m.K, m.N, m.StripeSize/int64(m.K))
}
