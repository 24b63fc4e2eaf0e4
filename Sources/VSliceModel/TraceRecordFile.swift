import Foundation
import VSliceSupport

/// One attempt of one segment by a worker process (`vslice segment`), as it reports itself: a small JSON file
/// beside the segment (`seg-NNNNN.trace-UUID.json`), written atomically once the attempt has ended. The
/// process that owns the ledger ingests it (`JobStore.ingestTraceRecords`) as a trace row.
public struct SegmentTraceRecord: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int = SegmentTraceRecord.currentVersion
    /// The trace's ID (UUID): the ledger's trace row has the same.
    public var trace: TraceID
    public var task: TaskID
    public var segment: Int
    /// `done` or `failed`.
    public var status: StepStatus
    public var error: String?
    /// How the worker exited: ok, processing (1, worth a retry; 7 when `deterministic`), usage (2), input (3),
    /// interrupted (130) — or `lost` in a record the coordinator wrote for an attempt that ended without one (its
    /// element vanished from the scheduler: cancelled, killed, its node failed).
    public var exitKind: String
    /// The worker's exit code; absent in a coordinator's `lost` record (no one saw the worker exit).
    public var exitCode: Int32?
    /// A failed attempt that would fail the same way again (exit 2, 3 or 7): never retried. Absent in done
    /// records and in records of workers that predate the field (then only exit 2 and 3 count as such).
    public var deterministic: Bool?
    public var startedAt: Double
    public var endedAt: Double
    public var wallSeconds: Double
    /// CPU time of the whole worker process (all encoder threads).
    public var cpuSeconds: Double
    public var framesIn: Int?
    public var framesOut: Int?
    /// Size of the sealed segment file and its trailer checksum (done only).
    public var bytes: Int64?
    public var checksum: Int64?
    /// The segment file, relative to the work folder (done only).
    public var file: String?
    public var pid: Int
    public var host: String
    /// The scheduler that ran the worker, when there was one.
    public var engine: Engine?
    /// The attempt's fixed costs (see `FixedCost`): attempt start → first frame handed on, end of stream to the
    /// encoder → file sealed (a done attempt's), and when the worker's process started (Unix time, from
    /// `/proc/self/stat`). Absent in records of workers that predate them.
    public var startupSeconds: Double? = nil
    public var flushSeconds: Double? = nil
    public var processStartedAt: Double? = nil
    /// With `--process`: the program's start-up and work per source frame (see `FixedCost`).
    public var processorStartupSeconds: Double? = nil
    public var processorSecondsPerFrame: Double? = nil

    public struct Engine: Codable, Sendable, Equatable {
        /// slurm | kubernetes | ray
        public var kind: String
        /// Slurm: the array's job ID (SLURM_ARRAY_JOB_ID, else SLURM_JOB_ID). Kubernetes: the pod's name.
        public var job: String?
        /// Slurm: SLURM_ARRAY_TASK_ID. Kubernetes: JOB_COMPLETION_INDEX.
        public var arrayIndex: Int?
        /// Slurm: the element's own job ID (SLURM_JOB_ID).
        public var elementJob: String?
        /// Slurm: the node it ran on, by Slurm's name for it (SLURMD_NODENAME; several nodes may share a host).
        public var node: String? = nil

        /// What the environment says about the scheduler running this process, if any.
        public static func from(environment env: [String: String]) -> Engine? {
            // First: a Ray cluster may run inside a Slurm allocation, whose variables its workers inherit.
            if let node = env["VSLICE_RAY_NODE_ID"] {
                return Engine(kind: "ray", job: env["VSLICE_RAY_ACTOR"], arrayIndex: nil, elementJob: env["VSLICE_RAY_ATTEMPT"], node: node)
            }
            if let id = env["SLURM_JOB_ID"] {
                return Engine(kind: "slurm", job: env["SLURM_ARRAY_JOB_ID"] ?? id,
                              arrayIndex: env["SLURM_ARRAY_TASK_ID"].flatMap { Int($0) }, elementJob: id,
                              node: env["SLURMD_NODENAME"])
            }
            if let index = env["JOB_COMPLETION_INDEX"] {
                return Engine(kind: "kubernetes", job: env["HOSTNAME"], arrayIndex: Int(index), elementJob: nil)
            }
            return nil
        }

        package init(kind: String, job: String? = nil, arrayIndex: Int? = nil, elementJob: String? = nil,
                     node: String? = nil) {
            self.kind = kind
            self.job = job
            self.arrayIndex = arrayIndex
            self.elementJob = elementJob
            self.node = node
        }
    }

    /// The failure is deterministic (bad options, bad or changed input, a filter or encoder rejecting its input):
    /// running the segment again fails again. Decided by the executors' one policy (`VSliceError.failsEveryTime`).
    public var deterministicFailure: Bool { failure?.failsEveryTime ?? false }

    /// `exit_kind` of a record the coordinator wrote for a lost attempt (see `exitKind`).
    public static let lostExitKind = "lost"

    /// The worker's error as it threw it (kind, message, deterministic or not), for a failed record.
    public var failure: VSliceError? {
        guard status == .failed else { return nil }
        var e = VSliceError(VSliceError.Kind(rawValue: exitKind) ?? .processing, "segment \(segment)", reason: error ?? exitKind)
        e.deterministic = deterministic ?? false
        return e
    }

    package static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    package static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    /// Writes the record into the work folder (temporary file, fsync, rename); returns its path.
    @discardableResult
    public func write(workDir: String) throws(VSliceError) -> String {
        let data: Data
        do { data = try Self.encoder.encode(self) } catch {
            throw VSliceError(.processing, "write trace record", path: workDir, reason: plainReason(error))
        }
        let path = (workDir as NSString).appendingPathComponent(WorkFolder.traceRecordName(segment: segment, trace: trace))
        try WorkFolder.writeAtomically(data + Data("\n".utf8), to: path)
        return path
    }

    /// Every trace record in a work folder, oldest first. Files that do not parse are skipped (a record is
    /// written whole or not at all, so such a file is not ours).
    public static func all(workDir: String) -> [SegmentTraceRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workDir)) ?? []
        var records: [SegmentTraceRecord] = []
        for name in names where name.hasPrefix("seg-") && name.contains(".trace-") && name.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: (workDir as NSString).appendingPathComponent(name)),
                  let r = try? decoder.decode(SegmentTraceRecord.self, from: data) else { continue }
            records.append(r)
        }
        return records.sorted { ($0.endedAt, $0.trace) < ($1.endedAt, $1.trace) }
    }

    package init(version: Int = SegmentTraceRecord.currentVersion, trace: TraceID, task: TaskID, segment: Int,
                 status: StepStatus, error: String? = nil, exitKind: String, exitCode: Int32? = nil,
                 deterministic: Bool? = nil, startedAt: Double, endedAt: Double, wallSeconds: Double,
                 cpuSeconds: Double, framesIn: Int? = nil, framesOut: Int? = nil, bytes: Int64? = nil,
                 checksum: Int64? = nil, file: String? = nil, pid: Int, host: String, engine: Engine? = nil,
                 startupSeconds: Double? = nil, flushSeconds: Double? = nil, processStartedAt: Double? = nil) {
        self.version = version
        self.trace = trace
        self.task = task
        self.segment = segment
        self.status = status
        self.error = error
        self.exitKind = exitKind
        self.exitCode = exitCode
        self.deterministic = deterministic
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.framesIn = framesIn
        self.framesOut = framesOut
        self.bytes = bytes
        self.checksum = checksum
        self.file = file
        self.pid = pid
        self.host = host
        self.engine = engine
        self.startupSeconds = startupSeconds
        self.flushSeconds = flushSeconds
        self.processStartedAt = processStartedAt
    }
}
