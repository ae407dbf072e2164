package netns

// Abandon leaves n as a crashed process leaves its network: the bridge and namespaces stay,
// and the name's and subnet's locks go, as the kernel drops them with the process.
func Abandon(n *Network) { n.unlock() }
