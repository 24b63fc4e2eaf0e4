import Foundation
import VSliceSupport

/// Where a task's segments run (`--executor`); stored with the task, so a resume runs them the same way.
public struct ExecutorConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Threads in the vslice process (the default).
        case local
        /// One Slurm job array; element i runs `vslice segment --index i`.
        case slurm
        /// Long-lived Ray actors, one per job slot, run `vslice segment --index i` element after element.
        case ray
        /// Someone else runs `vslice segment` for every index (e.g. a Kubernetes Indexed Job); the coordinator
        /// waits for their trace records.
        case external
    }

    public var kind: Kind
    /// Extra `sbatch` arguments (`--slurm-arg`, repeatable), e.g. `--partition=render`.
    public var slurmArgs: [String]
    /// The Ray cluster's address (`--ray-address`, else RAY_ADDRESS when the task was started).
    public var rayAddress: String?

    public init(kind: Kind = .local, slurmArgs: [String] = [], rayAddress: String? = nil) {
        self.kind = kind
        self.slurmArgs = slurmArgs
        self.rayAddress = rayAddress
    }

    public static let local = ExecutorConfig()

    /// Segments run in other processes, which find the task through its work folder.
    public var isRemote: Bool { kind != .local }
}
