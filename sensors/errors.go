package sensors

import "errors"

// ErrBusy is a read refused because the previous read of the same device is
// still blocked in the kernel (a 1-Wire conversion that never finished):
// rather than pile up goroutines, the driver keeps at most one read per
// device outstanding. Reason reports it as "other".
var ErrBusy = errors.New("previous read still pending")
