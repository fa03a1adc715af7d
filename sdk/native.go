//go:build !wasip1

package sdk

// Register does nothing natively: a plugin's main package registers from
// init, and native tests call its handlers or Handle directly.
func Register(p *Plugin) { _ = p }
