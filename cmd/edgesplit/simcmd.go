package main

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/sim"
	"github.com/spf13/cobra"
)

func newSimCmd() *cobra.Command {
	var scenario, out, modelName, link, policy, calibration, objective string
	var maxLoss, energyWeight float64
	var seed uint64
	var devices, clouds int
	var duration time.Duration
	var rate, slowdown float64
	cmd := &cobra.Command{
		Use:   "sim --scenario S.yaml --out DIR [--seed N]  |  sim --devices N --model M --link L --policy P --duration D",
		Short: "Discrete-event simulation of split inference at scale, with the real scheduler",
		Long: `sim runs a scenario in the discrete-event simulator, which plans with the same scheduler policies
and cost model as real nodes. A scenario's synthetic models are zoo graphs (` + joinNames(sim.SyntheticModels()) + `)
with latencies of the analytic reference device; any other model edgesplit can load (a zoo name or an ONNX file)
is profiled with the engine on this machine as the reference device. Planners minimise --objective (the
scenario's objective key; per-request energy is the energy_mj column, the summary splits it into compute,
radio and tail). With --out, per-request rows go to DIR/requests.csv and the summary to DIR/summary.txt.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s *sim.Scenario
			var err error
			switch {
			case scenario != "" && calibration != "":
				return fmt.Errorf("--calibration is for a scenario built from flags; a scenario file names tables per model (models[].calibration)")
			case scenario != "":
				s, err = sim.LoadScenario(scenario)
			default:
				s, err = sim.QuickScenario(sim.Quick{Devices: devices, Model: modelName, Link: link, Policy: policy,
					Duration: duration, Rate: rate, Slowdown: slowdown, Clouds: clouds, Seed: seed, Calibration: calibration,
					Objective: objective, EnergyWeight: energyWeight})
			}
			if err == nil && scenario != "" && cmd.Flags().Changed("objective") {
				if _, err = scheduler.ParseObjective(objective); err != nil {
					return fmt.Errorf("--objective: %w", err)
				}
				s.Objective = objective
				for i := range s.Edges {
					s.Edges[i].Objective = ""
				}
			}
			if err == nil && scenario != "" && cmd.Flags().Changed("energy-weight") {
				if energyWeight < 0 {
					return fmt.Errorf("--energy-weight must be ≥ 0")
				}
				s.EnergyWeight = energyWeight
			}
			if err != nil {
				return err
			}
			cfg := sim.Config{Seed: seed, Resolve: profileForSim(cmd)}
			if cmd.Flags().Changed("max-accuracy-loss") {
				b, err := scheduler.NewBudget(maxLoss)
				if err != nil {
					return fmt.Errorf("--max-accuracy-loss: %w", err)
				}
				cfg.Accuracy = &b
			}
			start := time.Now()
			var sum *sim.Summary
			if out != "" {
				sum, err = sim.RunDir(cmd.Context(), s, out, cfg)
			} else {
				sum, err = sim.Run(cmd.Context(), s, cfg)
			}
			if err != nil {
				return err
			}
			if err := sum.Format(cmd.OutOrStdout()); err != nil {
				return err
			}
			wall := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "wall time %v (%.2f M simulated requests per second)\n",
				wall.Round(time.Millisecond), float64(sum.Requests)/wall.Seconds()/1e6)
			if out != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/requests.csv and %s/summary.txt\n", out, out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "", "scenario YAML file (see docs/scenarios)")
	f.Float64Var(&maxLoss, "max-accuracy-loss", scheduler.DefaultMaxLoss, "accuracy budget (overrides the scenario's max_accuracy_loss): largest loss of top-1 agreement a codec may cost, by its calibration's 95% lower bound; 0: exact codecs only")
	f.StringVar(&calibration, "calibration", "", "without --scenario: the model's calibration table (certifies int8 where it kept the answers)")
	f.StringVar(&out, "out", "", "folder for requests.csv and summary.txt")
	f.Uint64Var(&seed, "seed", 0, "random seed (overrides the scenario's; 0 keeps it)")
	f.IntVar(&devices, "devices", 100, "without --scenario: edge devices")
	f.StringVar(&modelName, "model", "resnet18", "without --scenario: model")
	f.StringVar(&link, "link", "lte", "without --scenario: link profile ("+joinNames(sim.LinkProfileNames())+")")
	f.StringVar(&policy, "policy", "auto", "without --scenario: split policy")
	f.DurationVar(&duration, "duration", time.Minute, "without --scenario: simulated time")
	f.Float64Var(&rate, "rate", 1, "without --scenario: requests per second per device (Poisson)")
	f.Float64Var(&slowdown, "slowdown", 8, "without --scenario: edge device slowdown vs the reference")
	f.IntVar(&clouds, "clouds", 1, "without --scenario: cloud servers")
	f.StringVar(&objective, "objective", "latency", "what planners minimise: latency, energy (the device's joules) or weighted (seconds + --energy-weight × joules); overrides the scenario's")
	f.Float64Var(&energyWeight, "energy-weight", scheduler.DefaultEnergyWeight, "weighted objective: seconds per joule (overrides the scenario's)")
	return cmd
}

// profileForSim resolves a model the simulator does not know by profiling it
// with the engine on this machine.
func profileForSim(cmd *cobra.Command) func(string) (sim.Model, error) {
	return func(name string) (sim.Model, error) {
		g, err := loadGraph(name)
		if err != nil {
			return sim.Model{}, err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "profiling %s on this machine...\n", name)
		p, err := partition.MeasureSynthetic(cmd.Context(), g, partition.ProfileConfig{Runs: 5})
		if err != nil {
			return sim.Model{}, err
		}
		dag, err := scheduler.NewDAG(g, p)
		if err != nil {
			return sim.Model{}, err
		}
		return sim.Model{Profile: p, DAG: dag}, nil
	}
}
