import Foundation
import Logging
import Synchronization

/// What the pipeline tells its caller while it runs (progress, NDJSON events).
public enum PipelineEvent: Sendable {
    case planned(totalFrames: Int, segments: Int, framesAlreadyDone: Int)
    case framesProcessed(Int)
    case segmentStarted(index: Int)
    case segmentDone(index: Int, frames: Int)
    case audioDone
    case merged
    case published(path: String)
}

public struct TranscodeRequest: Sendable {
    public var input: String
    public var output: String
    public var settings: TranscodeSettings
    public var force: Bool
    public var keepTemp: Bool
    /// Folder under which the per-task work folder is made; default: beside the output.
    public var workRoot: String?

    public init(input: String, output: String, settings: TranscodeSettings, force: Bool = false,
                keepTemp: Bool = false, workRoot: String? = nil) {
        self.input = input
        self.output = output
        self.settings = settings
        self.force = force
        self.keepTemp = keepTemp
        self.workRoot = workRoot
    }
}

public struct TranscodeReport: Codable, Sendable {
    public var input: String
    public var output: String
    public var segments: Int
    public var frames: Int
    public var wallSeconds: Double
    /// Frames each segment kept, in segment order (as the plan said).
    public var segmentFrames: [Int]
    public var verify: VerifyReport
}

/// Output containers by file extension.
public enum Container {
    public static func format(forPath path: String) -> String? {
        switch (path as NSString).pathExtension.lowercased() {
        case "mp4", "m4v": "mp4"
        case "mov": "mov"
        case "mkv": "matroska"
        case "webm": "webm"
        default: nil
        }
    }
}

/// The transcode DAG: probe → (audio ∥ plan → encode[0…n-1]) → concat+mux → verify → publish.
public struct Transcoder: Sendable {
    public var request: TranscodeRequest
    public var logger: Logger
    public var onEvent: @Sendable (PipelineEvent) -> Void

    public init(request: TranscodeRequest, logger: Logger, onEvent: @escaping @Sendable (PipelineEvent) -> Void = { _ in }) {
        self.request = request
        self.logger = logger
        self.onEvent = onEvent
    }

    /// Checks the request before any work: output container, output folder, output ≠ input, existing output.
    public static func checkPaths(input: String, output: String, force: Bool) throws(VSliceError) -> String {
        guard let format = Container.format(forPath: output) else {
            throw VSliceError(.usage, "choose container", path: output,
                              reason: "unknown output extension (use .mp4, .mov, .mkv or .webm)")
        }
        let fm = FileManager.default
        let dir = (absolute(output) as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "check output", path: output, reason: "output folder '\(dir)' does not exist")
        }
        guard fm.isWritableFile(atPath: dir) else {
            throw VSliceError(.usage, "check output", path: output, reason: "output folder '\(dir)' is not writable")
        }
        if fm.fileExists(atPath: input), canonical(input) == canonical(output) {
            throw VSliceError(.usage, "check output", path: output, reason: "output is the input file")
        }
        if fm.fileExists(atPath: output) && !force {
            throw VSliceError(.outputExists, "check output", path: output, reason: "output exists (use --force to replace it)")
        }
        return format
    }

    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
    static func canonical(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }

    /// The per-task work folder.
    func workFolder() -> String {
        let out = Transcoder.absolute(request.output)
        let name = (out as NSString).lastPathComponent
        let root = request.workRoot ?? (out as NSString).deletingLastPathComponent
        return (root as NSString).appendingPathComponent(".\(name).vslice-work")
    }

    public func run() throws(VSliceError) -> TranscodeReport {
        let started = monotonicSeconds()
        let settings = request.settings
        try settings.validate()
        let format = try Transcoder.checkPaths(input: request.input, output: request.output, force: request.force)

        // probe, plan
        let probe = try Probe(path: request.input)
        guard let index = probe.video else {
            throw VSliceError(.input, "probe", path: request.input, reason: "no video stream")
        }
        let plan = Plan(index: index, settings: settings)
        logger.info("planned", metadata: ["segments": "\(plan.segments.count)", "frames": "\(plan.frameCount)"])
        onEvent(.planned(totalFrames: plan.frameCount, segments: plan.segments.count, framesAlreadyDone: 0))

        let work = workFolder()
        do {
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        } catch {
            throw VSliceError(.processing, "create work folder", path: work, reason: error.localizedDescription)
        }

        // audio, beside the video branch
        let audioPath = (work as NSString).appendingPathComponent("audio.vseg")
        let audioJob: WorkerPool.Joinable? = probe.report.audioStream.map { aIndex in
            let job = AudioEncoder(source: request.input, audioStream: aIndex, settings: settings, outputPath: audioPath)
            let onEvent = self.onEvent
            return WorkerPool.spawn { () throws(VSliceError) in
                _ = try job.run()
                onEvent(.audioDone)
            }
        }

        // encode: longest segments first, so the last one to finish is short
        let source = request.input
        let onEvent = self.onEvent
        let segmentPaths = plan.segments.map { (work as NSString).appendingPathComponent(String(format: "seg-%05d.vseg", $0.index)) }
        let order = plan.segments.sorted { $0.processedCount > $1.processedCount }
        let kept = Mutex([Int](repeating: 0, count: plan.segments.count))
        let errors = WorkerPool.run(order, jobs: settings.jobs) { (segment: SegmentPlan) throws(VSliceError) in
            onEvent(.segmentStarted(index: segment.index))
            let encoder = SegmentEncoder(source: source, index: index, segment: segment,
                                         settings: settings, outputPath: segmentPaths[segment.index],
                                         progress: { onEvent(.framesProcessed($0)) })
            let result = try encoder.run()
            kept.withLock { $0[segment.index] = result.framesKept }
            onEvent(.segmentDone(index: segment.index, frames: result.framesKept))
        }
        let audioError = audioJob?.wait()
        if let e = errors.first ?? audioError { throw e }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: request.input, reason: "interrupted; work kept in \(work)")
        }

        // concat + mux into a temporary file beside the output
        let out = Transcoder.absolute(request.output)
        let tmp = ((out as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent(".\((out as NSString).lastPathComponent).vslice-tmp-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let base = Transcoder.timelineBase(probe)
        let merger = Merger(segments: segmentPaths, audio: audioJob == nil ? nil : audioPath, output: tmp,
                            format: format, base: base, displayMatrix: probe.displayMatrix)
        _ = try merger.run()
        onEvent(.merged)

        // verify, then publish
        let verify = try Verifier.verify(output: Probe(path: tmp), against: probe)
        guard verify.ok else {
            // Kept for inspection inside the work folder, never at the output path.
            let rejected = (work as NSString).appendingPathComponent("rejected." + (out as NSString).pathExtension)
            try? FileManager.default.removeItem(atPath: rejected)
            try? FileManager.default.moveItem(atPath: tmp, toPath: rejected)
            throw VSliceError(.processing, "verify", path: request.output,
                              reason: verify.problems.joined(separator: "; ") + " (not published; see \(rejected))")
        }
        try FileOps.publish(tmp, to: out, replace: request.force)
        onEvent(.published(path: out))
        if !request.keepTemp { try? FileManager.default.removeItem(atPath: work) }
        return TranscodeReport(input: request.input, output: request.output, segments: plan.segments.count,
                               frames: plan.frameCount, wallSeconds: monotonicSeconds() - started,
                               segmentFrames: kept.withLock { $0 }, verify: verify)
    }

    /// The source time that becomes 0 in the output: the earliest start of the streams used.
    static func timelineBase(_ probe: Probe) -> Timestamp {
        let v = probe.video!
        var base = Timestamp(ticks: v.pts[0], timeBase: v.timeBase)
        if let a = probe.audio, a.start < Double(v.pts[0]) * v.timeBase.value {
            // Expressed in the video time base's precision would round; use microseconds.
            base = Timestamp(ticks: Int64((a.start * 1_000_000).rounded()), timeBase: Ratio(num: 1, den: 1_000_000))
        }
        return base
    }
}
