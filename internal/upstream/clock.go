package upstream

import "time"

// MonoNow returns the monotonic clock in nanoseconds (since the process started): one clock
// read, where time.Now reads the wall clock as well, and a sudden change of the wall clock
// cannot fire or hold off a timeout. The stream timer and activity notes use it on every
// request.
func MonoNow() int64 { return int64(time.Since(monoEpoch)) }

var monoEpoch = time.Now()
