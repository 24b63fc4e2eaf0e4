import Foundation
import GRDB
import VSliceModel
import VSliceSupport

public struct TaskRecord: Codable, FetchableRecord, Sendable {
    public var id: TaskID
    public var input: String
    public var output: String
    public var inputFingerprint: String
    /// The canonical signature of the output-affecting settings (`TranscodeSettings.outputSignature`): a resume
    /// must have the same.
    public var settingsSignature: String
    public var workDir: String
    public var status: TaskStatus
    public var error: String?
    public var framesTotal: Int
    public var leasePid: Int?
    public var leaseHost: String?
    public var leaseHeartbeat: Double?
    /// A new random token each time a process takes the lease: every write of a holder names it, so a holder
    /// whose lease was taken over (stopped past the stale limit) can no longer write anything.
    public var leaseToken: String?
    public var createdAt: Double
    public var updatedAt: Double
    public var requestJson: String?
    /// How the task failed (`VSliceError.Kind`'s raw value), when it did; nil for tasks stored before it was kept.
    public var failureKind: String?
    /// Its failure would fail the same way again (bad input or options, a refused resume, a deterministic
    /// processing failure): `resume --all` passes over it.
    public var failureDeterministic: Bool?

    public static let databaseTableName = "task"

    /// The request the task was started with (nil for tasks stored before it was kept).
    public var storedRequest: TranscodeRequest? {
        guard let data = requestJson?.data(using: .utf8) else { return nil }
        guard let stored = try? JSONDecoder().decode(StoredRequest.self, from: data) else { return nil }
        var r = TranscodeRequest(input: input, output: output, settings: stored.settings, force: stored.force,
                                 keepTemp: stored.keepTemp, workRoot: stored.workRoot, executor: stored.executor ?? .local)
        r.maxAttempts = stored.maxAttempts
        r.stallTimeout = stored.stallTimeout
        r.keepLogs = stored.keepLogs ?? false
        return r
    }
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    private enum EncodedKeys: String, CodingKey {
        case id, input, output, inputFingerprint, settingsSignature, workDir, status, error, framesTotal, leasePid,
             leaseHost, leaseHeartbeat, createdAt, updatedAt, request
    }

    /// As JSON (`vslice status --json`): the stored request as an object (`settings`, `force`, `keep_temp`,
    /// `work_root`, `executor`), not as a string; the lease token, a holder's secret, left out.
    public func encode(to encoder: any Swift.Encoder) throws {
        var c = encoder.container(keyedBy: EncodedKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(input, forKey: .input)
        try c.encode(output, forKey: .output)
        try c.encode(inputFingerprint, forKey: .inputFingerprint)
        try c.encode(settingsSignature, forKey: .settingsSignature)
        try c.encode(workDir, forKey: .workDir)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encode(framesTotal, forKey: .framesTotal)
        try c.encodeIfPresent(leasePid, forKey: .leasePid)
        try c.encodeIfPresent(leaseHost, forKey: .leaseHost)
        try c.encodeIfPresent(leaseHeartbeat, forKey: .leaseHeartbeat)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        if let data = requestJson?.data(using: .utf8), let stored = try? JSONDecoder().decode(StoredRequest.self, from: data) {
            try c.encode(stored, forKey: .request)
        }
    }
}

public struct EventRecord: Codable, FetchableRecord, Sendable {
    public var id: EventID
    public var taskId: TaskID
    public var node: String
    public var status: StepStatus
    public var attempts: Int
    public var detail: String?
    public var error: String?
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

public struct SegmentRecord: Codable, FetchableRecord, Sendable {
    public var id: SegmentID
    public var eventId: EventID
    public var ord: Int
    public var status: SegmentStatus
    public var attempts: Int
    public var framesPlanned: Int
    public var framesDone: Int?
    public var file: String
    public var fileSize: Int64?
    public var fileChecksum: Int64?
    public var error: String?
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

public struct TraceRecord: Codable, FetchableRecord, Sendable {
    public var id: TraceID
    public var eventId: EventID
    public var segmentId: SegmentID?
    public var status: StepStatus
    public var startedAt: Double
    public var endedAt: Double?
    public var wallSeconds: Double?
    public var cpuSeconds: Double?
    public var framesIn: Int?
    public var framesOut: Int?
    public var bytes: Int64?
    public var error: String?
    public var pid: Int
    public var host: String
    /// Set for attempts a `vslice segment` worker reported: the scheduler (slurm, kubernetes), its job and
    /// array index, and the worker's exit code.
    public var engine: String?
    public var engineJob: String?
    public var engineIndex: Int?
    public var exitCode: Int?
    /// An element's fixed costs (see `FixedCost`), where measured.
    public var startupSeconds: Double? = nil
    public var flushSeconds: Double? = nil
    public var processSeconds: Double? = nil
    public var submittedAt: Double? = nil
    public var schedulerSeconds: Double? = nil
    public var collectedSeconds: Double? = nil
    /// With `--process`: the program's start-up and work per source frame in this attempt (see `FixedCost`).
    public var processorStartupSeconds: Double? = nil
    public var processorSecondsPerFrame: Double? = nil
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

/// What of a request is stored with its task (input and output have their own columns).
package struct StoredRequest: Codable {
    package var settings: TranscodeSettings
    package var force: Bool
    package var keepTemp: Bool
    package var workRoot: String?
    /// Where the segments run (absent in tasks stored before executors existed: local).
    package var executor: ExecutorConfig?
    /// `--max-attempts` and `--stall-timeout` as given (nil: not given, or stored before they were kept).
    package var maxAttempts: Int? = nil
    package var stallTimeout: Double? = nil
    package var keepLogs: Bool? = nil
}
