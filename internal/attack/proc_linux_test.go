package attack

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill a peer process when the test process
// dies (a test timeout or an interrupt skips t.Cleanup).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
