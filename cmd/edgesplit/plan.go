package main

import (
	"fmt"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newPlanCmd() *cobra.Command {
	var modelPath, link, edgeDev, cloudDev, policy, codecs string
	var objf objectiveFlags
	var runs int
	var acc accuracyFlags
	cmd := &cobra.Command{
		Use:   "plan --model M --profile LINK [--edge-device D] [--cloud-device D] [--policy P]",
		Short: "Explain a split decision: the predicted latency of every cut × codec on a link, and the plan chosen",
		Long: `plan profiles the model on this machine, scales it to the edge and cloud device profiles, measures the
codec presets, takes the link profile's rates and delay as the link estimate, and prints the cost model's
prediction for every prefix cut × codec (plus a DAG cut when dads finds one), marking the chosen plan.
Codec ratios are measured at every cut on a seeded input, or — with a calibration table or --calibration
DATA — on real inputs, which also certifies lossy codecs under the accuracy budget (--max-accuracy-loss);
the accuracy column says what each candidate risks, and rows the budget rules out are marked x.
Every candidate's predicted energy on the edge device is printed too (compute, radio, RRC tail, total, in mJ;
the edge device profile's compute power, the link profile's radio), and --objective energy or weighted
(seconds + --energy-weight × joules) makes the policy choose by it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, sc, err := loadModel(modelPath)
			if err != nil {
				return err
			}
			m, err := node.NewModel(modelPath, "", g, sc)
			if err != nil {
				return err
			}
			budget, err := acc.budget()
			if err != nil {
				return err
			}
			if err := acc.attach(cmd, m, modelPath); err != nil {
				return err
			}
			prof, err := linkem.LookupProfile(link)
			if err != nil {
				return err
			}
			edge, err := node.ParseDevice(edgeDev)
			if err != nil {
				return err
			}
			cloud, err := node.ParseDevice(cloudDev)
			if err != nil {
				return err
			}
			pol, err := scheduler.ParsePolicy(policy)
			if err != nil {
				return err
			}
			obj, power, energyWeight, err := objf.resolve(edge.Name, link)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ep, err := node.MeasureProfile(ctx, m, edge, runs)
			if err != nil {
				return err
			}
			cp, err := node.MeasureProfile(ctx, m, cloud, runs)
			if err != nil {
				return err
			}
			var names []string
			if codecs != "" {
				names = splitList(codecs)
			}
			base, err := node.MeasureCodecs(ctx, names)
			if err != nil {
				return err
			}
			cms, err := node.CutCodecs(ctx, m, base)
			if err != nil {
				return err
			}
			dag, err := scheduler.NewDAG(m.Graph, ep)
			if err != nil {
				return err
			}
			in := &scheduler.Inputs{Edge: ep, DAG: dag, Codecs: cms, Accuracy: budget, Objective: obj, Power: power, EnergyWeight: energyWeight, Clouds: []scheduler.CloudInput{{
				ID: "cloud", Profile: cp,
				Link: scheduler.LinkEstimate{RTT: prof.Up.Delay + prof.Down.Delay, Up: prof.Up.MeanRate() / 8, Down: prof.Down.MeanRate() / 8},
			}}}
			ex, err := scheduler.Explain(pol, in)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model %s (%d nodes) · link %s (up %.1f Mbit/s, down %.1f Mbit/s, RTT %v) · edge %s ×%g · cloud %s ×%g · policy %s · objective %s\n",
				m.ID, m.Nodes(), link, prof.Up.MeanRate()/1e6, prof.Down.MeanRate()/1e6, prof.Up.Delay+prof.Down.Delay,
				edge.Name, edge.Slowdown, cloud.Name, cloud.Slowdown, pol.Name(), obj)
			fmt.Fprintf(out, "power: compute %.2f W · radio %s · tail %.0f mW for %v\n\n", power.ComputeW, radioName(power.Radio),
				power.Radio.TailMW, power.Radio.Tail)
			return ex.Format(out)
		},
	}
	f := cmd.Flags()
	// node and demo call these --link and --device: accept those too.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "link":
			name = "profile"
		case "device":
			name = "edge-device"
		}
		return pflag.NormalizedName(name)
	})
	f.StringVar(&modelPath, "model", "", modelFlagHelp)
	f.StringVar(&link, "profile", "lte", "link profile ("+joinNames(linkem.ProfileNames())+")")
	f.StringVar(&edgeDev, "edge-device", "raspberry-pi-4", "edge device profile or slowdown:F")
	f.StringVar(&cloudDev, "cloud-device", "server", "cloud device profile or slowdown:F")
	f.StringVar(&policy, "policy", "auto", "split policy")
	f.StringVar(&codecs, "codecs", "", "comma-separated codec presets (default all)")
	f.IntVar(&runs, "runs", 5, "profiling runs per node")
	objf.register(f)
	acc.register(f)
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

func radioName(r scheduler.Radio) string {
	if r.Technology == "" {
		return "none (wired)"
	}
	return r.Technology
}
