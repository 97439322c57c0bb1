// Command edgesplit is the command-line front of the edgesplit framework:
// every subcommand is a thin shell over a package (model, partition,
// tensorcodec, transport, scheduler, node, sim).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgesplit:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "edgesplit",
		Short:         "Distributed edge–cloud split inference",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDemoCmd(),
		newInspectCmd(),
		newInferCmd(),
		newSplitCmd(),
		newBenchCmd(),
		newProfileCmd(),
		newNodeCmd(),
		newModelCmd(),
		newCACmd(),
		newExportCmd(),
		newPlanCmd(),
		newSimCmd(),
		newLinkCmd(),
		newCodecCmd(),
		newTrainCmd(),
		newEvalCmd(),
		newTokenCmd(),
		newOCRCmd(),
		newGenerateCmd(),
	)
	return root
}
