package sim

import "strconv"

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 9, 64) }
func itoa(i int) string         { return strconv.Itoa(i) }
