import CFFmpeg
import Foundation
import Logging
import Synchronization

/// What the pipeline tells its caller while it runs (progress, NDJSON events).
public enum PipelineEvent: Sendable {
    /// The task this run works on (new, or an unfinished one resumed).
    case taskStarted(id: String, resumed: Bool)
    case planned(totalFrames: Int, segments: Int, framesAlreadyDone: Int)
    /// Kept frames a segment attempt has processed since the last report.
    case framesProcessed(segment: Int, frames: Int)
    case segmentStarted(index: Int)
    case segmentDone(index: Int, frames: Int)
    /// An attempt failed (it may be retried).
    case segmentFailed(index: Int, error: String)
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
    public var task: String
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
                              reason: "unknown output extension (use .mp4, .mov or .mkv)")
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

    /// Refuses, before any work, an encoder whose codec the output container cannot hold.
    static func checkCodecs(format: String, settings: TranscodeSettings, output: String) throws(VSliceError) {
        guard let muxer = av_guess_format(format, nil, nil) else { return }
        for (name, option) in [(settings.videoCodec, "--vcodec"), (settings.audioCodec, "--acodec")] {
            guard let codec = avcodec_find_encoder_by_name(name) else { continue }
            if avformat_query_codec(muxer, codec.pointee.id, FF_COMPLIANCE_NORMAL) == 0 {
                throw VSliceError(.usage, "check options", path: output,
                                  reason: "the \(String(cString: muxer.pointee.name)) container cannot hold \(name) (\(option)); choose another codec or container")
            }
        }
    }

    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
    static func canonical(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }

    /// How a run behaves (none of this affects the output).
    public struct RunOptions: Sendable {
        /// Start over instead of resuming an unfinished task for the same input and output.
        public var fresh = false
        /// Attempts per segment before the task fails.
        public var maxAttempts = 3
        /// A segment attempt with no decoded frame for this many seconds is abandoned (and retried).
        public var stallTimeout = 300.0
        /// Resume exactly this task (`vslice resume`), instead of looking it up by input and output.
        public var taskId: String? = nil
        public init() {}
    }

    /// Runs the task for this request: a new one, or the unfinished one for the same input and output
    /// (resume). Finished steps are verified and skipped; the rest runs.
    public func run(store: JobStore, options: RunOptions = RunOptions()) throws(VSliceError) -> TranscodeReport {
        let started = monotonicSeconds()
        let settings = request.settings
        try settings.validate()
        if !(options.stallTimeout > 0) || options.maxAttempts < 1 {
            throw VSliceError(.usage, "check options", reason: "--stall-timeout must be positive and --max-attempts at least 1")
        }
        let input = Transcoder.absolute(request.input), out = Transcoder.absolute(request.output)

        var existing: TaskRecord?
        if let id = options.taskId {
            guard let t = try store.task(id) else { throw VSliceError(.usage, "resume", reason: "no task '\(id)'") }
            guard JobStore.resumableStatuses.contains(t.status) else {
                throw VSliceError(.usage, "resume task \(t.id.prefix(8))", path: t.output, reason: "the task is \(t.status); nothing to resume")
            }
            existing = t
        } else {
            existing = try store.unfinishedTask(input: input, output: out)
        }
        if let t = existing, options.fresh {
            try store.acquireLease(t.id)
            try store.cancel(t.id)
            try? FileManager.default.removeItem(atPath: t.workDir)
            existing = nil
        }
        // A crash between publishing and recording it leaves our own file at the output: not "an existing output".
        let published = existing.flatMap { try? store.publishedAlready($0) } ?? false
        let format = try Transcoder.checkPaths(input: request.input, output: request.output,
                                               force: request.force || published)
        try Transcoder.checkCodecs(format: format, settings: settings, output: request.output)
        // Bad input is refused (probing checks readability first) before a task or a work folder exists.
        let probe = try Probe(path: input)
        // A filter graph is built, and its timing measured, before any work: a bad or uncuttable one is refused.
        var filterTiming: FilterTiming? = nil
        if let vf = settings.videoFilter, let v = probe.video {
            try VideoFilterGraph.check(vf, source: input, videoStream: v.streamIndex)
            filterTiming = try FilterTiming.measure(vf, source: input, index: v)
        }
        // What the output carries of the other streams, decided before any work; what it cannot is named.
        let layout = try SourceLayout(path: input)
        let streamPlan = try StreamPlan(layout, videoStream: probe.video!.streamIndex, format: format, settings: settings)
        if !streamPlan.dropped.isEmpty {
            logger.warning("not carried (the \(format) output cannot hold them; --strict-streams makes this an error): \(streamPlan.dropped.joined(separator: ", "))")
        }
        if !streamPlan.reencodedInsteadOfCopy.isEmpty {
            logger.warning("--acodec copy: \(streamPlan.reencodedInsteadOfCopy.joined(separator: ", ")) cannot be copied into \(format); re-encoded to aac")
        }
        let hdr = try HDRMetadata.read(source: input, videoStream: probe.video!.streamIndex)
        let extras = SourceExtras(filterTiming: filterTiming, layout: layout, streams: streamPlan, hdr: hdr)
        let fingerprint = try Fingerprint.of(input)
        if let t = existing {
            if t.inputFingerprint != fingerprint {
                throw VSliceError(.resumeRefused, "resume task \(t.id.prefix(8))", path: input,
                                  reason: "the input changed since the task started (use --fresh to start over)")
            }
            if t.settingsJson != settings.outputSignature {
                throw VSliceError(.resumeRefused, "resume task \(t.id.prefix(8))", path: out,
                                  reason: "settings differ from the unfinished task's [\(t.settingsJson)] (use the same options, or --fresh)")
            }
        }
        let task: TaskRecord
        if let t = existing {
            task = t
            logger.info("resuming task", metadata: ["task": "\(t.id)"])
        } else {
            let name = (out as NSString).lastPathComponent
            let root = request.workRoot.map(Transcoder.absolute) ?? (out as NSString).deletingLastPathComponent
            let id = UUID().uuidString.lowercased()
            task = try store.createTask(id: id, input: input, output: out, fingerprint: fingerprint, request: request,
                                        workDir: (root as NSString).appendingPathComponent(".\(name).vslice-\(id.prefix(8))"))
        }
        try store.acquireLease(task.id)
        onEvent(.taskStarted(id: task.id, resumed: existing != nil))
        let watchdog = StallWatchdog(timeout: options.stallTimeout)
        defer { watchdog.stop() }
        let heartbeat = Heartbeat(store: store, task: task.id, onCancelled: { watchdog.cancelAll() })
        defer { heartbeat.stop() }
        do {
            let report = try execute(task: task, store: store, probe: probe, input: input, out: out, format: format,
                                     options: options, watchdog: watchdog, published: published, started: started,
                                     extras: extras)
            try store.finishTask(task.id, status: "done")
            return report
        } catch {
            let cancelled = (try? store.task(task.id))?.status == "cancelled"
            let status = cancelled ? "cancelled"
                : error.kind == .interrupted || Cancellation.stopRequested ? "interrupted" : "failed"
            var error = error
            if error.kind == .processing && (error.code == vs_averror(ENOSPC) || error.code == vs_averror(EDQUOT)
                                             || error.reason.contains(String(cString: strerror(ENOSPC)))) {
                error.reason += " — the disk is full; free space, then run the same command to resume (finished segments are kept)"
            }
            try? store.finishTask(task.id, status: status, error: error.description)
            // Bad input or bad options fail again on every resume: nothing in the work folder is worth keeping.
            if !cancelled && (error.kind == .input || error.kind == .usage) && !request.keepTemp {
                try? FileManager.default.removeItem(atPath: task.workDir)
            }
            if cancelled {
                if !request.keepTemp { try? FileManager.default.removeItem(atPath: task.workDir) }
                throw VSliceError(.interrupted, "transcode", path: input, reason: "the task was cancelled (vslice cancel)")
            }
            throw error
        }
    }

    /// Resumes a stored task by its ID (or ID prefix), with the request it was started with.
    public static func resume(taskId: String, store: JobStore, logger: Logger, options: RunOptions = RunOptions(),
                              jobs: Int? = nil, onEvent: @escaping @Sendable (PipelineEvent) -> Void = { _ in })
        throws(VSliceError) -> TranscodeReport {
        guard let t = try store.task(taskId) else { throw VSliceError(.usage, "resume", reason: "no task '\(taskId)'") }
        guard var request = t.storedRequest else {
            throw VSliceError(.resumeRefused, "resume task \(t.id.prefix(8))", path: t.output,
                              reason: "the task was stored without its options; run the same transcode command again")
        }
        if let jobs { request.settings.jobs = jobs }
        var options = options
        options.taskId = t.id
        return try Transcoder(request: request, logger: logger, onEvent: onEvent).run(store: store, options: options)
    }

    private func execute(task: TaskRecord, store: JobStore, probe: Probe, input: String, out: String, format: String,
                         options: RunOptions, watchdog: StallWatchdog, published: Bool,
                         started: Double, extras: SourceExtras) throws(VSliceError) -> TranscodeReport {
        let filterTiming = extras.filterTiming
        let maxAttempts = options.maxAttempts
        let settings = request.settings
        let work = task.workDir
        do {
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        } catch {
            throw VSliceError(.processing, "create work folder", path: work, reason: error.localizedDescription)
        }

        // probe, plan
        _ = try step(store, task.id, "probe") { () throws(VSliceError) in probe.report.frameCount }
        guard let index = probe.video else {
            throw VSliceError(.input, "probe", path: input, reason: "no video stream")
        }
        let plan = try step(store, task.id, "plan") { () throws(VSliceError) in
            filterTiming.map { Plan(index: index, settings: settings, filter: $0, from: Transcoder.filteredStart(probe)) }
                ?? Plan(index: index, settings: settings)
        }
        try store.setFrames(task.id, plan.frameCount)
        let segmentPaths = plan.segments.map { (work as NSString).appendingPathComponent(String(format: "seg-%05d.vseg", $0.index)) }
        try store.ensureSegments(task: task.id, plan: plan, files: segmentPaths)

        // Which segments are really done: recorded done, and the file is there, sealed, of the recorded size.
        var done = Set<Int>()
        for row in try store.segments(task: task.id) where row.status == "done" {
            if Transcoder.segmentFileIsIntact(row) { done.insert(row.ord) } else {
                logger.warning("segment file missing or damaged; redoing it", metadata: ["segment": "\(row.ord)"])
                try store.resetSegment(row.id)
            }
        }
        let framesDone = plan.segments.filter { done.contains($0.index) }.map(\.frameCount).reduce(0, +)
        logger.info("planned", metadata: ["segments": "\(plan.segments.count)", "frames": "\(plan.frameCount)", "done": "\(done.count)"])
        onEvent(.planned(totalFrames: plan.frameCount, segments: plan.segments.count, framesAlreadyDone: framesDone))

        // audio (each kept track re-encoded once, or copied) and subtitles, beside the video branch
        let streamPlan = extras.streams
        let audioPaths = streamPlan.audio.map { (work as NSString).appendingPathComponent("audio-\($0.ordinal).vseg") }
        let subtitlePaths = streamPlan.subtitles.map { (work as NSString).appendingPathComponent("subtitle-\($0.ordinal).vseg") }
        var audioJob: WorkerPool.Joinable? = nil
        if !(audioPaths + subtitlePaths).isEmpty {
            let audioDone = try store.eventDone(task.id, "audio") != nil
                && (audioPaths + subtitlePaths).allSatisfy { (try? PacketFileReader(path: $0)) != nil }
            if !audioDone {
                let encoders = zip(streamPlan.audio, audioPaths).filter { !$0.0.copy }.map {
                    AudioEncoder(source: input, audioStream: $0.0.stream, settings: settings, outputPath: $0.1)
                }
                let copied = zip(streamPlan.audio, audioPaths).filter { $0.0.copy }
                let copier = AudioCopier(source: input, streams: copied.map(\.0.stream), outputs: copied.map(\.1))
                let subtitles = SubtitleExtractor(source: input, tracks: streamPlan.subtitles, outputs: subtitlePaths)
                let onEvent = self.onEvent
                let taskId = task.id
                audioJob = WorkerPool.spawn { () throws(VSliceError) in
                    let trace = try store.beginEvent(taskId, "audio")
                    let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
                    do throws(VSliceError) {
                        var packets = 0
                        var bytes: Int64 = 0
                        for job in encoders {
                            let r = try job.run()
                            packets += r.packets
                            bytes += r.bytes
                        }
                        packets += try copier.run()
                        try subtitles.run()
                        try store.endStep(trace: trace, task: taskId, node: "audio",
                                          figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0,
                                                         framesOut: packets, bytes: bytes), error: nil)
                    } catch {
                        try? store.endStep(trace: trace, task: taskId, node: "audio",
                                           figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0),
                                           error: error.description)
                        throw error
                    }
                    onEvent(.audioDone)
                }
            }
        }

        // encode: what is not done, longest segments first, so the last one to finish is short
        let onEvent = self.onEvent
        let logger = self.logger
        let taskId = task.id
        let todo = plan.segments.filter { !done.contains($0.index) }.sorted { $0.processedCount > $1.processedCount }
        let kept = Mutex([Int](repeating: 0, count: plan.segments.count))
        for s in plan.segments where done.contains(s.index) { kept.withLock { $0[s.index] = s.frameCount } }
        let encodeSettings = settings.forRun(segments: todo.count)
        let errors = WorkerPool.run(todo, jobs: settings.jobs) { (segment: SegmentPlan) throws(VSliceError) in
            let segId = "\(taskId)_encode_\(segment.index)"
            var attempt = 0
            while true {
                attempt += 1
                onEvent(.segmentStarted(index: segment.index))
                let trace = try store.beginEvent(taskId, "encode", segment: segId)
                let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
                let watch = WorkWatch()
                var encoder = SegmentEncoder(source: input, index: index, segment: segment, settings: encodeSettings,
                                             outputPath: segmentPaths[segment.index],
                                             progress: { onEvent(.framesProcessed(segment: segment.index, frames: $0)) }, watch: watch)
                encoder.hdr = extras.hdr
                do throws(VSliceError) {
                    let result = try watchdog.watching(watch) { () throws(VSliceError) in try encoder.run() }
                    Fault.hit("segment-commit")
                    try store.endStep(trace: trace, task: taskId, node: "encode",
                                      segment: .init(id: segId, frames: result.framesKept, size: result.bytes,
                                                     checksum: Int64(result.checksum)),
                                      figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0,
                                                     framesIn: result.framesProcessed, framesOut: result.framesKept, bytes: result.bytes),
                                      error: nil)
                    kept.withLock { $0[segment.index] = result.framesKept }
                    onEvent(.segmentDone(index: segment.index, frames: result.framesKept))
                    Fault.hit("segment-done")
                    return
                } catch {
                    try? store.endStep(trace: trace, task: taskId, node: "encode",
                                       segment: .init(id: segId, frames: 0, size: 0, checksum: 0),
                                       figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0),
                                       error: error.description)
                    onEvent(.segmentFailed(index: segment.index, error: error.description))
                    // Only processing failures are worth another try; bad input, bad options and Ctrl-C are not.
                    guard error.kind == .processing, !error.deterministic, attempt < maxAttempts, !Cancellation.stopRequested,
                          !watchdog.cancelled else { throw error }
                    logger.warning("segment failed; retrying", metadata: ["segment": "\(segment.index)", "error": "\(error)"])
                    Thread.sleep(forTimeInterval: 0.5 * Double(1 << (attempt - 1)))
                }
            }
        }
        let audioError = audioJob?.wait()
        if let e = errors.first ?? audioError { throw e }
        if settings.videoFilter != nil && kept.withLock({ $0.reduce(0, +) }) == 0 {
            var e = VSliceError(.processing, "filter", path: input, reason: "the --vf graph gave no frames at all")
            e.deterministic = true
            throw e
        }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: input, reason: "interrupted; resume by running the same command")
        }

        // concat + mux, in one streaming pass, into a part file beside the output (same filesystem, so the
        // publish is a rename); a finished part file is kept for a resume. Then verify, then publish.
        let part = Transcoder.partPath(task: task)
        if published {
            logger.info("output already published by the interrupted run; verifying it")
        } else if let muxed = try store.eventDone(task.id, "mux"), muxed.detail == FileOps.size(part).map(String.init) {
            logger.info("merged file from the interrupted run kept", metadata: ["file": "\(part)"])
        } else {
            let layout = extras.layout
            let tracks = zip(streamPlan.audio.map(\.stream) + streamPlan.subtitles.map(\.stream), audioPaths + subtitlePaths).map {
                Merger.Track(path: $0.1, tags: layout.streams[$0.0].tags, disposition: layout.streams[$0.0].disposition)
            }
            var merger = Merger(segments: segmentPaths, tracks: tracks, output: part, format: format,
                                base: Transcoder.timelineBase(probe, audioStreams: streamPlan.audio.map(\.stream)),
                                displayMatrix: probe.displayMatrix)
            merger.videoTags = layout.streams[index.streamIndex].tags
            merger.videoDisposition = layout.streams[index.streamIndex].disposition
            merger.layout = layout
            merger.attachments = streamPlan.attachments
            merger.attachedPictures = streamPlan.attachedPictures
            merger.hdr = extras.hdr
            merger.frameRate = Transcoder.constantRate(probe, filter: filterTiming)
            _ = try step(store, task.id, "mux", detail: { (size: Int64) in String(size) }) { () throws(VSliceError) in
                do throws(VSliceError) { return try merger.run().bytes } catch {
                    // A half-written merge is worth nothing (and may be what filled the disk).
                    try? FileManager.default.removeItem(atPath: part)
                    throw error
                }
            }
        }
        onEvent(.merged)

        let checked = published ? out : part
        let verify = try step(store, task.id, "verify") { () throws(VSliceError) in
            try Verifier.verify(output: Probe(path: checked), against: probe, filtered: filterTiming,
                                audioStreams: streamPlan.audio.map(\.stream),
                                copiedAudio: Set(streamPlan.audio.indices.filter { streamPlan.audio[$0].copy }),
                                subtitleStreams: streamPlan.subtitles.map(\.stream))
        }
        guard verify.ok else {
            // Kept for inspection inside the work folder, never at the output path.
            let rejected = (work as NSString).appendingPathComponent("rejected." + (out as NSString).pathExtension)
            if !published {
                try? FileManager.default.removeItem(atPath: rejected)
                try? FileManager.default.moveItem(atPath: part, toPath: rejected)
            }
            throw VSliceError(.processing, "verify", path: request.output,
                              reason: verify.problems.joined(separator: "; ") + (published ? "" : " (not published; see \(rejected))"))
        }
        if !published {
            Fault.hit("publish")
            try step(store, task.id, "publish") { () throws(VSliceError) in
                // Recorded before the rename: a crash right after it can still tell the output is ours.
                try store.recordPublishing(task.id, identity: FileOps.identity(part) ?? "")
                try FileOps.publish(part, to: out, replace: request.force)
                Fault.hit("published")
            }
        } else {
            try store.markEventDone(task.id, "publish")
        }
        onEvent(.published(path: out))
        if !request.keepTemp { try? FileManager.default.removeItem(atPath: work) }
        return TranscodeReport(task: task.id, input: request.input, output: request.output, segments: plan.segments.count,
                               frames: plan.frameCount, wallSeconds: monotonicSeconds() - started,
                               segmentFrames: kept.withLock { $0 }, verify: verify)
    }

    /// The merged file before it is published: beside the output, named after the task.
    static func partPath(task: TaskRecord) -> String {
        let dir = (task.output as NSString).deletingLastPathComponent
        return (dir as NSString).appendingPathComponent(".\((task.output as NSString).lastPathComponent).vslice-\(task.id.prefix(8)).part")
    }

    /// Runs one DAG node under a trace.
    private func step<T>(_ store: JobStore, _ task: String, _ node: String, detail: (T) -> String? = { _ in nil },
                         _ body: () throws(VSliceError) -> T) throws(VSliceError) -> T {
        let trace = try store.beginEvent(task, node)
        let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
        do throws(VSliceError) {
            let r = try body()
            try store.endStep(trace: trace, task: task, node: node,
                              figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: nil,
                              detail: detail(r))
            return r
        } catch {
            try? store.endStep(trace: trace, task: task, node: node,
                               figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: error.description)
            throw error
        }
    }

    static func segmentFileIsIntact(_ row: SegmentRecord) -> Bool {
        var st = stat()
        guard stat(row.file, &st) == 0, Int64(st.st_size) == row.fileSize else { return false }
        guard let reader = try? PacketFileReader(path: row.file) else { return false }
        // Frames recorded when it was done (a filter may change the count), else the plan's.
        return Int(reader.packetCount) == (row.framesDone ?? row.framesPlanned) && Int64(reader.checksum) == row.fileChecksum
    }

    /// The first time (video time base) a filtered output keeps: the output's timeline starts at the source's
    /// earliest stream, and what a filter times before that (a rate change rounding down) is dropped.
    static func filteredStart(_ probe: Probe) -> Int64 {
        let v = probe.video!
        let b = timelineBase(probe)
        return av_rescale_q_rnd(b.ticks, b.timeBase.av, v.timeBase.av, AV_ROUND_UP)
    }

    /// The output's frame rate when it is constant (for Matroska's default duration): the source's when it is
    /// CFR, the filter's when it states one; nil for VFR.
    static func constantRate(_ probe: Probe, filter: FilterTiming?) -> Ratio? {
        if let filter { return filter.rate }
        guard probe.report.variableFrameRate == false, let v = probe.video,
              let r = probe.report.streams[v.streamIndex].avgFrameRate, r.num > 0, r.den > 0 else { return nil }
        return r
    }

    /// The source time that becomes 0 in the output: the earliest start of the streams used.
    /// `audioStreams`: the audio streams kept (nil: the best one, as `probe.audio`).
    static func timelineBase(_ probe: Probe, audioStreams: [Int]? = nil) -> Timestamp {
        let v = probe.video!
        var base = Timestamp(ticks: v.pts[0], timeBase: v.timeBase)
        let starts = audioStreams.map { kept in probe.audioTracks.filter { kept.contains($0.stream) }.map(\.span.start) }
            ?? probe.audio.map { [$0.start] } ?? []
        if let a = starts.min(), a < Double(v.pts[0]) * v.timeBase.value {
            // Expressed in the video time base's precision would round; use microseconds.
            base = Timestamp(ticks: Int64((a * 1_000_000).rounded()), timeBase: Ratio(num: 1, den: 1_000_000))
        }
        return base
    }
}

/// What the run knows of the source beyond its video index: the filter's timing, the container's streams and
/// metadata, and what the output keeps of them.
struct SourceExtras: @unchecked Sendable {
    var filterTiming: FilterTiming?
    var layout: SourceLayout
    var streams: StreamPlan
    var hdr: HDRMetadata?
}

/// Keeps the task's lease fresh while it runs (every 2 s), and notices a `vslice cancel`.
final class Heartbeat: Sendable {
    private let ticker: PeriodicThread

    init(store: JobStore, task: String, onCancelled: @escaping @Sendable () -> Void) {
        let noticed = Atomic<Bool>(false)
        ticker = PeriodicThread(every: 2) {
            store.heartbeat(task)
            if !noticed.load(ordering: .relaxed), (try? store.status(of: task)) == "cancelled" {
                noticed.store(true, ordering: .relaxed)
                onCancelled()
            }
        }
    }

    func stop() { ticker.stop() }
}

/// Abandons a segment attempt that has decoded nothing for `timeout` seconds (`--stall-timeout`).
final class StallWatchdog: Sendable {
    private let running = Mutex<[ObjectIdentifier: WorkWatch]>([:])
    private let cancelledFlag = Atomic<Bool>(false)
    private let ticker = Mutex<PeriodicThread?>(nil)

    init(timeout: Double) {
        let t = PeriodicThread(every: min(0.25, timeout / 4)) { [self] in
            running.withLock { watches in
                for w in watches.values where w.idleSeconds > timeout {
                    w.abandon("stalled: no frame decoded for \(Int(timeout)) s (--stall-timeout)")
                }
            }
        }
        ticker.withLock { $0 = t }
    }

    var cancelled: Bool { cancelledFlag.load(ordering: .relaxed) }

    /// The task was cancelled: abandon every running attempt, and any started later.
    func cancelAll() {
        cancelledFlag.store(true, ordering: .relaxed)
        running.withLock { for w in $0.values { w.abandon("the task was cancelled") } }
    }

    func watching<T>(_ watch: WorkWatch, _ body: () throws(VSliceError) -> T) throws(VSliceError) -> T {
        watch.madeProgress()
        running.withLock { $0[ObjectIdentifier(watch)] = watch }
        if cancelled { watch.abandon("the task was cancelled") }
        defer { _ = running.withLock { $0.removeValue(forKey: ObjectIdentifier(watch)) } }
        return try body()
    }

    func stop() { ticker.withLock { $0 }?.stop() }
}
