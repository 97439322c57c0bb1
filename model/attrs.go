package model

// attrIntsOr returns the ints attribute name as []int, or def when absent.
func attrIntsOr(n *Node, name string, def []int) []int {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInts {
		return ints(a.Ints)
	}
	return def
}

// filled returns a slice of k copies of v.
func filled(k, v int) []int {
	r := make([]int, k)
	for i := range r {
		r[i] = v
	}
	return r
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis, rank int) (int, error) {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return 0, shapeErrf("axis %d out of range for rank %d", axis, rank)
	}
	return axis, nil
}

// constInput returns input i as a constant, or an error when it is computed
// at run time (the engine needs it at load time).
func constInput(c *nodeCtx, i int, what string) (*tval, error) {
	v := c.input(i)
	if v == nil {
		return nil, nil
	}
	if !v.konst {
		return nil, unsupportedf("%s (input %d %q) must be a constant", what, i, c.n.Inputs[i])
	}
	return v, nil
}

// setOut sets output k's shape and dtype.
func (c *nodeCtx) setOut(k int, dt dtype, shape []int) {
	if k < len(c.out) {
		c.out[k].dt = dt
		c.out[k].shape = shape
	}
}

func rankErr(c *nodeCtx, i int, want string) error {
	return shapeErrf("input %d %q has shape %v, want %s", i, c.n.Input(i), c.input(i).shape, want)
}
