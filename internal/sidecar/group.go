package sidecar

// group is a set of actors that run together and end together, after oklog/run's Group: an
// actor is a function that runs until its work ends or it is interrupted, and the function
// that interrupts it. run starts every actor, waits for the first to return, then
// interrupts the others one at a time in the reverse order of add, waiting for each to
// return before interrupting the next, so that the teardown is the start order reversed.
// An interrupt must make its execute return soon, and may be called after its execute has
// returned.
type group struct {
	actors []actor
}

type actor struct {
	name      string
	execute   func() error
	interrupt func()
}

// add appends an actor; run starts it.
func (g *group) add(name string, execute func() error, interrupt func()) {
	g.actors = append(g.actors, actor{name: name, execute: execute, interrupt: interrupt})
}

// run runs every actor and returns the error of the first to return, once all have.
func (g *group) run() error {
	if len(g.actors) == 0 {
		return nil
	}
	done := make([]chan error, len(g.actors))
	first := make(chan int, len(g.actors))
	for i, a := range g.actors {
		done[i] = make(chan error, 1)
		go func() {
			done[i] <- a.execute()
			first <- i
		}()
	}
	i := <-first
	err := <-done[i]
	for j := len(g.actors) - 1; j >= 0; j-- {
		if j != i {
			g.actors[j].interrupt()
			<-done[j]
		}
	}
	return err
}

// stop ends a group that will not run (its start failed half-way): each actor, last added
// first, is interrupted and then run to its end, which releases what it holds.
func (g *group) stop() {
	for j := len(g.actors) - 1; j >= 0; j-- {
		g.actors[j].interrupt()
		g.actors[j].execute()
	}
	g.actors = nil
}
