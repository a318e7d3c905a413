package vici

// The internals the external tests (package vici_test) read: they live in
// their own package so that they can use vicitest.Fake, which imports vici.
var (
	ConnMessage      = connMessage
	PoolMessage      = poolMessage
	SharedMessage    = sharedMessage
	CertMessage      = certMessage
	KeyMessage       = keyMessage
	AuthorityMessage = authorityMessage
	IndexCerts       = indexCerts
	Digest           = digest
	CertFingerprint  = certFingerprint
	ParseEvent       = parseEvent
	Str              = str
)
