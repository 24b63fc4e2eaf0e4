import ArgumentParser
import Foundation
import VSliceKit

/// Where a task's segments run: `--executor`, `--slurm-arg` (what `plan` takes too: the executor changes the plan).
struct ExecutorChoice: ParsableArguments {
    @Option(help: "Where segments run: local (threads here), slurm (one job array), external (you run `vslice segment` per index).")
    var executor: ExecutorConfig.Kind = .local

    @Option(name: .customLong("slurm-arg"), parsing: .unconditionalSingleValue,
            help: "An argument for sbatch (repeatable), e.g. --slurm-arg=--partition=render.")
    var slurmArgs: [String] = []

    var config: ExecutorConfig { ExecutorConfig(kind: executor, slurmArgs: slurmArgs) }
}

/// Where a transcode's segments run: `--executor`, `--slurm-arg`, `--detach`.
struct ExecutorOptions: ParsableArguments {
    @OptionGroup var choice: ExecutorChoice

    @Flag(help: "slurm/external: return once the segments are submitted; `vslice resume TASK` finishes the task.")
    var detach = false

    var executor: ExecutorConfig.Kind { choice.executor }
    var slurmArgs: [String] { choice.slurmArgs }
    var config: ExecutorConfig { choice.config }
}

extension ExecutorConfig.Kind: ExpressibleByArgument {}
