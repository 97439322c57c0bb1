//go:build !race

package tensorcodec

const raceEnabled = false
