package proposals

// Test oracles: what the tests compare with charon and with the client
// families, kept out of the package's API.
var (
	NegotiateESPInitial = negotiateESPInitial
	ParseCharon         = parseCharon
	Catalogue           = func() []Algorithm { return append([]Algorithm(nil), catalogue...) }
)
