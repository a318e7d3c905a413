package diagnose

// Sizes reports the Correlator's bookkeeping, for the test of its bounds.
func (c *Correlator) Sizes() (attempts, order, remotes int) {
	return len(c.attempts), len(c.order), len(c.byRemote)
}
