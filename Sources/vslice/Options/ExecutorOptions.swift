import ArgumentParser
import Foundation
import VSliceKit

/// Where a task's segments run: `--executor`, `--slurm-arg`, `--ray-address` (what `plan` takes too: the executor
/// changes the plan).
struct ExecutorChoice: ParsableArguments {
    @Option(help: "Where segments run: local (threads here), slurm (one job array), ray (actors on a Ray cluster), external (you run `vslice segment` per index).")
    var executor: ExecutorConfig.Kind = .local

    @Option(name: .customLong("slurm-arg"), parsing: .unconditionalSingleValue,
            help: "An argument for sbatch (repeatable), e.g. --slurm-arg=--partition=render.")
    var slurmArgs: [String] = []

    @Option(name: .customLong("ray-address"),
            help: "ray: the cluster's address (its head's HOST:PORT, or ray://HOST:PORT with ray[client]); default RAY_ADDRESS.")
    var rayAddress: String?

    @Flag(help: "slurm/external: each array element (pod) stays up and claims element after element (--jobs workers), so the scheduler's latency and the process start are paid once per worker.")
    var workersStayUp = false

    var config: ExecutorConfig {
        let ray = rayAddress ?? (executor == .ray ? ProcessInfo.processInfo.environment["RAY_ADDRESS"] : nil)
        return ExecutorConfig(kind: executor, slurmArgs: slurmArgs, rayAddress: ray, staysUp: workersStayUp)
    }
}

/// Where a transcode's segments run: `--executor`, `--slurm-arg`, `--ray-address`, `--detach`.
struct ExecutorOptions: ParsableArguments {
    @OptionGroup var choice: ExecutorChoice

    @Flag(help: "slurm/ray/external: return once the segments are submitted; `vslice resume TASK` finishes the task.")
    var detach = false

    var executor: ExecutorConfig.Kind { choice.executor }
    var slurmArgs: [String] { choice.slurmArgs }
    var rayAddress: String? { choice.rayAddress }
    var config: ExecutorConfig { choice.config }
}

extension ExecutorConfig.Kind: ExpressibleByArgument {}
