import Foundation
import VSliceSupport

/// Where a task's segments run (`--executor`); stored with the task, so a resume runs them the same way.
public struct ExecutorConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Threads in the vslice process (the default).
        case local
        /// One Slurm job array; element i runs `vslice segment --index i`.
        case slurm
        /// Long-lived Ray actors, one per job slot, each feeding its one `vslice segment --serve` element after element.
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
    /// `--workers-stay-up` (slurm, external): each array element (pod) is a worker that claims and runs element
    /// after element (`vslice segment --claim`), `--jobs` of them, instead of one process per element.
    public var staysUp: Bool? = nil

    public init(kind: Kind = .local, slurmArgs: [String] = [], rayAddress: String? = nil, staysUp: Bool = false) {
        self.kind = kind
        self.slurmArgs = slurmArgs
        self.rayAddress = rayAddress
        self.staysUp = staysUp ? true : nil
    }

    /// One worker process runs many elements: Ray's actors always, Slurm and external with `--workers-stay-up`.
    /// Its start is paid once per worker, not per element.
    public var workersStayUp: Bool { kind == .ray || (isRemote && staysUp == true) }

    /// Every element is a process of its own (its start paid per element).
    public var processPerElement: Bool { isRemote && !workersStayUp }

    public static let local = ExecutorConfig()

    /// Segments run in other processes, which find the task through its work folder.
    public var isRemote: Bool { kind != .local }
}
