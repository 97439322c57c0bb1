package node

import (
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/sim"
)

// An edge node and a simulated device learn their link by one core
// (scheduler.EdgeLearner). Fed the same events — pings every
// scheduler.PingInterval, uploads that the cloud timed, the path getting
// longer and the uplink slower midway — through node's translation (the
// linkEstimate a node's pings and transfers report to, with the cloud's
// response header) and sim's (sim.DeviceLearner), they hold identical
// estimates at every moment.
func TestLearningCoreSharedWithSim(t *testing.T) {
	ms := func(v int64) int64 { return v * int64(time.Millisecond) }
	rttAt := func(t int64) time.Duration { // the path: longer after 3 s
		if t < ms(3000) {
			return 40 * time.Millisecond
		}
		return 95 * time.Millisecond
	}
	type upload struct {
		leave, air, bytes int64 // ns, ns, bytes
	}
	var uploads []upload
	for i := range int64(40) {
		leave := ms(37) + i*ms(173)
		rate := 2e6 // bytes/s; a fifth of it after 4 s
		if leave > ms(4000) {
			rate = 0.4e6
		}
		n := 4000 + (i*7919)%60000
		uploads = append(uploads, upload{leave: leave, air: int64(float64(n) / rate * 1e9), bytes: n})
	}
	const down = time.Millisecond // the answer's download
	est := scheduler.LinkEstimate{RTT: 30 * time.Millisecond, Up: 1e6, Down: 6e6}
	prior := scheduler.LinkEstimate{RTT: 30 * time.Millisecond, Up: 1.25e6, Down: 6e6}
	t0 := time.Unix(0, 0)

	var acc accessLink
	edge := newLinkEstimate(&acc)
	var dev sim.DeviceLearner
	nextPing, next := int64(0), 0
	for now := int64(0); now <= ms(9000); now += ms(50) {
		// Events up to now, in time order: node reports each as it comes.
		for {
			done := int64(-1)
			if next < len(uploads) {
				u := uploads[next]
				done = u.leave + u.air + int64(rttAt(u.leave)) + int64(down)
				if done > now {
					done = -1
				}
			}
			if nextPing <= now && (done < 0 || nextPing <= done) {
				edge.observePingAt(t0.Add(time.Duration(nextPing)), rttAt(nextPing), false)
				nextPing += int64(scheduler.PingInterval)
				continue
			}
			if done < 0 {
				break
			}
			u := uploads[next]
			next++
			// Node: the exchange's network time, and the cloud's timing of
			// the whole body (it came in reads after the first, which
			// took none).
			network := time.Duration(u.air) + rttAt(u.leave) + down
			rh := segmentResponse{RecvTime: time.Duration(u.air), RecvBytes: u.bytes}
			edge.learnUploadAt(t0.Add(time.Duration(done)), u.bytes, network, down, est, rh, false)
			// Sim: the rate and RTT the device's upload met.
			dev.Pings(done, rttAt)
			dev.Upload(done, float64(u.bytes)/time.Duration(u.air).Seconds(), u.air, rttAt(u.leave))
		}
		dev.Pings(now, rttAt)
		got := dev.Estimate(now, prior)
		want := acc.learn.Link(edge.cloud, t0.Add(time.Duration(now)), prior)
		if got != want {
			t.Fatalf("at %v: sim learned %+v, node %+v", time.Duration(now), got, want)
		}
		if r := edge.rttAt(t0.Add(time.Duration(now))); now >= ms(100) && got.RTT != r {
			t.Fatalf("at %v: sim RTT %v, node's path %v", time.Duration(now), got.RTT, r)
		}
		if up := edge.upRate(); up > 0 && got.Up != up {
			t.Fatalf("at %v: sim uplink %.6g, node's path %.6g", time.Duration(now), got.Up, up)
		}
	}
	end := dev.Estimate(ms(9000), prior)
	if end.RTT != 95*time.Millisecond || end.Up > 0.45e6 || end.Up < 0.35e6 {
		t.Errorf("learned %+v at the end, want RTT 95ms, uplink ≈ 0.4 MB/s", end)
	}
}
