package netns

// Abandon leaves n as a crashed process leaves its network: the bridge and namespaces stay,
// and the subnet's lock goes, as the kernel drops it with the process.
func Abandon(n *Network) {
	n.lock.Close()
	n.lock = nil
}
