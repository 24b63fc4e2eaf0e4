import Foundation
import Logging
import Synchronization

/// What the pipeline tells its caller while it runs (progress, NDJSON events).
public enum PipelineEvent: Sendable {
    /// The task this run works on (new, or an unfinished one resumed).
    case taskStarted(id: String, resumed: Bool)
    /// How many segments a resumed run found done and intact (sent just before `planned`).
    case alreadyDone(segments: Int)
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
    /// Where the segments run (`--executor`).
    public var executor: ExecutorConfig

    public init(input: String, output: String, settings: TranscodeSettings, force: Bool = false,
                keepTemp: Bool = false, workRoot: String? = nil, executor: ExecutorConfig = .local) {
        self.input = input
        self.output = output
        self.settings = settings
        self.force = force
        self.keepTemp = keepTemp
        self.workRoot = workRoot
        self.executor = executor
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
    /// Absent when the run detached before the merge.
    public var verify: VerifyReport?
    /// The run handed its segments to a scheduler and returned (`--detach`); `vslice resume TASK` finishes it.
    public var detached: Bool = false
    /// The task's work folder (what `vslice segment --work-dir` takes).
    public var workDir: String? = nil
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
        // What is at the output path itself, not what a symlink there points to: a dangling link exists too.
        var st = stat()
        if lstat(output, &st) == 0 {
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                throw VSliceError(.usage, "check output", path: output, reason: "the output path is a folder; name a file in it")
            case S_IFREG, S_IFLNK:
                if !force {
                    let what = (st.st_mode & S_IFMT) == S_IFLNK ? "a symlink exists at the output path" : "output exists"
                    throw VSliceError(.outputExists, "check output", path: output, reason: "\(what) (use --force to replace it)")
                }
            default:
                throw VSliceError(.usage, "check output", path: output, reason: "the output path is not a regular file (a pipe, socket or device)")
            }
        }
        return format
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
        /// With a remote executor: return once the segments are submitted (the task stays running).
        public var detach = false
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

        // Everything that can be known up front is checked before a task or a work folder exists.
        let known: TaskRecord?
        if let id = options.taskId {
            guard let t = try store.task(id) else { throw VSliceError(.usage, "resume", reason: "no task '\(id)'") }
            known = t
        } else {
            known = try store.unfinishedTask(input: input, output: out)
        }
        let claim: JobStore.Claim
        let probe: Probe
        let identity: FileIdentity
        let format: String
        let extras: SourceExtras
        do throws(VSliceError) {
            // A crash between publishing and recording it leaves our own file at the output: not "an existing output".
            let published = !options.fresh && (known.flatMap { try? store.publishedAlready($0) } ?? false)
            format = try Transcoder.checkPaths(input: request.input, output: request.output, force: request.force || published)
            try Container.checkCodecs(format: format, settings: settings, output: request.output)
            try request.executor.check(request: request, detach: options.detach)
            try EncoderCheck.check(settings)
            // Bad input is refused (probing checks readability first) before a task or a work folder exists.
            try InputFile.checkReadable(input)
            guard let id = FileIdentity.of(input) else { throw FileIdentity.changed(input) }
            identity = id
            probe = try Probe(path: input, expect: identity)
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
            extras = SourceExtras(filterTiming: filterTiming, layout: layout, streams: streamPlan, hdr: hdr)
            let fingerprint = try Fingerprint.of(input)
            guard FileIdentity.of(input) == identity else { throw FileIdentity.changed(input) }
            claim = try store.claim(.init(input: input, output: out, fingerprint: fingerprint, request: request,
                                          taskId: options.taskId == nil ? nil : known?.id, fresh: options.fresh))
        } catch {
            // A task left `running` by a process that died, and refused now: say so in the ledger.
            if let t = known, t.status == "running" { store.markAbandoned(t.id, error: error.description) }
            throw error
        }
        for old in claim.discarded where !old.workDir.isEmpty {
            logger.info("discarding unfinished task", metadata: ["task": "\(old.id)"])
            try? GarbageCollector.remove(old, store: store)
        }
        let task = claim.task
        let published = claim.resumed && ((try? store.publishedAlready(task)) ?? false)
        if claim.resumed { logger.info("resuming task", metadata: ["task": "\(task.id)"]) }
        onEvent(.taskStarted(id: task.id, resumed: claim.resumed))
        let watchdog = StallWatchdog(timeout: options.stallTimeout)
        defer { watchdog.stop() }
        let heartbeat = Heartbeat(store: store, task: task.id, onCancelled: { watchdog.cancelAll("the task was cancelled") },
                                  onLost: { watchdog.cancelAll("another process took the task over") })
        defer { heartbeat.stop() }
        let context = RunContext(task: task, store: store, probe: probe, identity: identity, input: input, out: out,
                                 format: format, options: options, watchdog: watchdog, published: published, started: started)
        do {
            let report = try execute(context, extras: extras)
            // Detached: the segments run under the scheduler; the task stays running, with no process holding it.
            if report.detached { try store.releaseDetached(task.id) } else { try store.finishTask(task.id, status: "done") }
            return report
        } catch {
            // A holder that lost its lease touches nothing: the task and its files are another process's now.
            if heartbeat.lost || !store.holdsLease(task.id) { throw JobStore.leaseLost(task.id) }
            let cancelled = (try? store.status(of: task.id)) == "cancelled"
            let status = cancelled ? "cancelled"
                : error.kind == .interrupted || Cancellation.stopRequested ? "interrupted" : "failed"
            var error = error
            if error.isDiskFull {
                error.reason += " — the disk is full; free space, then run the same command to resume (finished segments are kept)"
            }
            // Bad input or bad options fail again on every resume: nothing in the work folder is worth keeping.
            let discard = cancelled || error.kind == .input || error.kind == .usage
            try? store.finishTask(task.id, status: status, error: error.description, discardWork: discard)
            if discard && !request.keepTemp {
                try? FileManager.default.removeItem(atPath: task.workDir)
                try? FileManager.default.removeItem(atPath: Transcoder.partPath(task: task))
            }
            if cancelled {
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

    /// What one run of a task works with.
    private struct RunContext {
        var task: TaskRecord
        var store: JobStore
        var probe: Probe
        /// The input file's identity when the run began; every open of the input checks it.
        var identity: FileIdentity
        var input: String
        var out: String
        var format: String
        var options: RunOptions
        var watchdog: StallWatchdog
        /// The output is already this task's own published file (a crash came after the rename).
        var published: Bool
        var started: Double
    }

    private func execute(_ run: RunContext, extras: SourceExtras) throws(VSliceError) -> TranscodeReport {
        let filterTiming = extras.filterTiming
        let (task, store, probe, input, out, format, watchdog) = (run.task, run.store, run.probe, run.input, run.out, run.format, run.watchdog)
        let published = run.published
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
        // The plan is made once and stored with the task: a resume (maybe with another --jobs, which shapes the
        // default plan) works on the same segments.
        let plan: Plan
        if let json = try store.eventDone(task.id, "plan")?.detail,
           let stored = try? JSONDecoder().decode(Plan.self, from: Data(json.utf8)), stored.frameCount == index.pts.count {
            plan = stored
        } else {
            plan = try step(store, task.id, "plan", detail: { (p: Plan) in (try? JSONEncoder().encode(p)).flatMap { String(data: $0, encoding: .utf8) } }) {
                () throws(VSliceError) in
                var p = try Plan.make(source: input, index: index, settings: settings, expect: run.identity,
                                      filter: filterTiming, from: Transcoder.filteredStart(probe))
                p.hdr = extras.hdr
                return p
            }
        }
        try store.setFrames(task.id, plan.frameCount)
        let segmentPaths = plan.segments.map { (work as NSString).appendingPathComponent(String(format: "seg-%05d.vseg", $0.index)) }
        try store.ensureSegments(task: task.id, plan: plan, files: segmentPaths)
        // What `vslice segment` workers need, for any executor; and what workers have reported since the last run.
        try WorkOrder(task: task.id, input: input, fingerprint: task.inputFingerprint, settings: settings, plan: plan,
                      index: index, stallTimeout: run.options.stallTimeout).write(workDir: work)
        try store.ingestTraceRecords(task: task.id, workDir: work)

        // Which segments are really done: recorded done, and the file is there, sealed, of the recorded size.
        var done = Set<Int>()
        for row in try store.segments(task: task.id) where row.status == "done" {
            if Transcoder.segmentFileIsIntact(row) { done.insert(row.ord) } else {
                logger.warning("segment file missing or damaged; redoing it", metadata: ["segment": "\(row.ord)"])
                try store.resetSegment(task.id, row.id)
            }
        }
        let framesDone = plan.segments.filter { done.contains($0.index) }.map(\.frameCount).reduce(0, +)
        logger.info("planned", metadata: ["segments": "\(plan.segments.count)", "frames": "\(plan.frameCount)", "done": "\(done.count)"])
        onEvent(.alreadyDone(segments: done.count))
        onEvent(.planned(totalFrames: plan.frameCount, segments: plan.segments.count, framesAlreadyDone: framesDone))

        // audio (each kept track re-encoded once, or copied) and subtitles, beside the video branch; their
        // packet files are written into a folder of their own, renamed into place by the commit that records them
        let streamPlan = extras.streams
        let tracksDir = (work as NSString).appendingPathComponent("tracks")
        let audioNames = streamPlan.audio.map { "audio-\($0.ordinal).vseg" }
        let subtitleNames = streamPlan.subtitles.map { "subtitle-\($0.ordinal).vseg" }
        let trackPaths = (audioNames + subtitleNames).map { (tracksDir as NSString).appendingPathComponent($0) }
        var audioJob: WorkerPool.Joinable? = nil
        if !trackPaths.isEmpty {
            let audioDone = try store.eventDone(task.id, "audio") != nil
                && trackPaths.allSatisfy { (try? PacketFileReader(path: $0)) != nil }
            if !audioDone {
                try? FileManager.default.removeItem(atPath: tracksDir)
                let onEvent = self.onEvent
                let taskId = task.id
                let identity = run.identity
                audioJob = WorkerPool.spawn { () throws(VSliceError) in
                    let trace = try store.beginEvent(taskId, "audio")
                    let tmp = tracksDir + ".\(trace.prefix(8)).tmp"
                    func inTmp(_ name: String) -> String { (tmp as NSString).appendingPathComponent(name) }
                    let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
                    do throws(VSliceError) {
                        do {
                            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
                        } catch {
                            throw VSliceError(.processing, "create folder", path: tmp, reason: error.localizedDescription)
                        }
                        var packets = 0
                        var bytes: Int64 = 0
                        var copied: [(stream: Int, path: String)] = []
                        for (track, name) in zip(streamPlan.audio, audioNames) {
                            if track.copy { copied.append((track.stream, inTmp(name))); continue }
                            let r = try AudioEncoder(source: input, audioStream: track.stream, settings: settings,
                                                     outputPath: inTmp(name), expect: identity).run()
                            packets += r.packets
                            bytes += r.bytes
                        }
                        packets += try AudioCopier(source: input, streams: copied.map(\.stream), outputs: copied.map(\.path),
                                                   expect: identity).run()
                        try SubtitleExtractor(source: input, tracks: streamPlan.subtitles, outputs: subtitleNames.map(inTmp),
                                              expect: identity).run()
                        try store.endStep(trace: trace, task: taskId, node: "audio",
                                          figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0,
                                                         framesOut: packets, bytes: bytes), error: nil,
                                          seal: .init(from: tmp, to: tracksDir))
                    } catch {
                        try? FileManager.default.removeItem(atPath: tmp)
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
        let todo = plan.segments.filter { !done.contains($0.index) }.sorted { $0.processedCount > $1.processedCount }
        let kept = Mutex([Int](repeating: 0, count: plan.segments.count))
        for s in plan.segments where done.contains(s.index) { kept.withLock { $0[s.index] = s.frameCount } }
        let job = EncodeJob(task: task, store: store, input: input, identity: run.identity, index: index, plan: plan,
                            segmentPaths: segmentPaths, todo: todo, settings: settings, options: run.options, watchdog: watchdog,
                            onEvent: onEvent, logger: logger, kept: { i, n in kept.withLock { $0[i] = n } })
        let encoded: Result<EncodeOutcome, VSliceError>
        do throws(VSliceError) { encoded = .success(try request.executor.make().encode(job)) } catch { encoded = .failure(error) }
        let audioError = audioJob?.wait()
        let outcome = try encoded.get()
        if let audioError { throw audioError }
        if case .finished = outcome, settings.videoFilter != nil, kept.withLock({ $0.reduce(0, +) }) == 0 {
            var e = VSliceError(.processing, "filter", path: input, reason: "the --vf graph gave no frames at all")
            e.deterministic = true
            throw e
        }
        if case .detached = outcome {
            return TranscodeReport(task: task.id, input: request.input, output: request.output, segments: plan.segments.count,
                                   frames: plan.frameCount, wallSeconds: monotonicSeconds() - run.started,
                                   segmentFrames: kept.withLock { $0 }, verify: nil, detached: true, workDir: work)
        }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: input, reason: "interrupted; resume by running the same command")
        }
        try store.markEventDone(task.id, "encode")

        // concat + mux, in one streaming pass, into a part file beside the output (same filesystem, so the
        // publish is a rename); a finished part file is kept for a resume, recorded with its size and
        // checksum, and used only while it still has them. Then verify, then publish.
        let part = Transcoder.partPath(task: task)
        if published {
            logger.info("output already published by the interrupted run; verifying it")
        } else if let muxed = try store.eventDone(task.id, "mux"), let recorded = muxed.detail,
                  FileOps.size(part) != nil, recorded == FileOps.signature(part) {
            logger.info("merged file from the interrupted run kept", metadata: ["file": "\(part)"])
        } else {
            // Every segment is checked against what its commit recorded before it is merged.
            for row in try store.segments(task: task.id) where !Transcoder.segmentFileIsIntact(row) {
                try? store.resetSegment(task.id, row.id)
                throw VSliceError(.processing, "merge", path: row.file,
                                  reason: "segment \(row.ord) is missing or differs from what was recorded; run the same command to redo it")
            }
            let layout = extras.layout
            let tracks = zip(streamPlan.audio.map(\.stream) + streamPlan.subtitles.map(\.stream), trackPaths).map {
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
            _ = try step(store, task.id, "mux", detail: { (signature: String) in signature }) { () throws(VSliceError) in
                // The merge writes a file of its own: a previous holder still writing the old one cannot touch it.
                try? FileManager.default.removeItem(atPath: part)
                do throws(VSliceError) {
                    _ = try merger.run()
                    guard let signature = FileOps.signature(part) else {
                        throw VSliceError(.processing, "read back", path: part, reason: "the merged file cannot be read")
                    }
                    return signature
                } catch {
                    // A half-written merge is worth nothing (and may be what filled the disk).
                    if store.holdsLease(task.id) { try? FileManager.default.removeItem(atPath: part) }
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
            // The file published is the file merged: checked against the checksum recorded by the merge.
            guard let recorded = try store.eventDone(task.id, "mux")?.detail, recorded == FileOps.signature(part) else {
                throw VSliceError(.processing, "publish", path: part,
                                  reason: "the merged file changed after it was written (checksum differs); not published — run the same command to merge again")
            }
            try step(store, task.id, "publish") { () throws(VSliceError) in
                try store.publish(task.id, part: part, to: out, replace: request.force)
                Fault.hit("published")
            }
        } else {
            try store.markEventDone(task.id, "publish")
        }
        onEvent(.published(path: out))
        if !request.keepTemp { try? FileManager.default.removeItem(atPath: work) }
        return TranscodeReport(task: task.id, input: request.input, output: request.output, segments: plan.segments.count,
                               frames: plan.frameCount, wallSeconds: monotonicSeconds() - run.started,
                               segmentFrames: kept.withLock { $0 }, verify: verify, workDir: work)
    }

    /// The merged file before it is published: beside the output, named after the task.
    static func partPath(task: TaskRecord) -> String { TaskPaths.partFile(output: task.output, taskId: task.id) }

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
    public static func filteredStart(_ probe: Probe) -> Int64 {
        let v = probe.video!
        let b = timelineBase(probe)
        return b.rescaledUp(to: v.timeBase)
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

/// Keeps the task's lease fresh while it runs (every 2 s); notices a `vslice cancel`, and a lease another
/// process took over (this one was stopped past the stale limit), which must stop this run at once.
final class Heartbeat: Sendable {
    private let ticker: PeriodicThread
    private let lostFlag = AtomicFlag()

    init(store: JobStore, task: String, onCancelled: @escaping @Sendable () -> Void, onLost: @escaping @Sendable () -> Void) {
        let noticed = AtomicFlag(), lost = lostFlag
        ticker = PeriodicThread(every: 2) {
            switch store.heartbeat(task) {
            case .held: break
            case .cancelled: if noticed.set() { onCancelled() }
            case .lost: if lost.set() { onLost() }
            }
        }
    }

    /// Whether the lease was found taken over.
    var lost: Bool { lostFlag.isSet }

    func stop() { ticker.stop() }
}

/// Abandons a segment attempt that has decoded nothing for `timeout` seconds (`--stall-timeout`).
final class StallWatchdog: Sendable {
    private let running = Mutex<[ObjectIdentifier: WorkWatch]>([:])
    private let cancelledFlag = Atomic<Bool>(false)
    private let reason = Mutex<String?>(nil)
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

    /// The task was cancelled (or taken over): abandon every running attempt, and any started later.
    func cancelAll(_ why: String) {
        reason.withLock { $0 = $0 ?? why }
        cancelledFlag.store(true, ordering: .relaxed)
        running.withLock { for w in $0.values { w.abandon(why) } }
    }

    func watching<T>(_ watch: WorkWatch, _ body: () throws(VSliceError) -> T) throws(VSliceError) -> T {
        watch.madeProgress()
        running.withLock { $0[ObjectIdentifier(watch)] = watch }
        if cancelled { watch.abandon(reason.withLock { $0 } ?? "the task was cancelled") }
        defer { _ = running.withLock { $0.removeValue(forKey: ObjectIdentifier(watch)) } }
        return try body()
    }

    func stop() { ticker.withLock { $0 }?.stop() }
}
