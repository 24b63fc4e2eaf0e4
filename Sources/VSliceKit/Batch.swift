import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// The inputs of `vslice batch` and where their outputs go: OUTDIR mirrors DIR's layout, with the output
/// container's extension.
public struct BatchItem: Sendable, Equatable {
    public var input: String
    /// The input's path relative to DIR.
    public var relative: String
    public var output: String
}

public enum BatchPlanner {
    /// Regular, non-hidden files under `dir` (below it too with `recursive`) whose name — or, for a pattern
    /// with a `/`, relative path — matches the glob `pattern`, sorted by path. OUTDIR is never scanned. Without
    /// OUTDIR (`vslice plan DIR`), the items' outputs are empty.
    public static func items(dir: String, outDir: String?, pattern: String, recursive: Bool,
                             extension ext: String) throws(VSliceError) -> [BatchItem] {
        let fm = FileManager.default
        let root = URL(fileURLWithPath: dir).standardizedFileURL.resolvingSymlinksInPath().path
        let outRoot = outDir.map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path }
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "batch", path: dir, reason: "not a folder")
        }
        // Outputs beside their inputs would be taken for inputs by the next run (and an output with the input's
        // own name would replace it): OUTDIR must be another folder (a subfolder is fine: it is never scanned).
        guard outRoot != root else {
            throw VSliceError(.usage, "batch", path: outDir ?? dir,
                              reason: "the output folder is the input folder: the next run would take the outputs for inputs; give another -o (a subfolder works)")
        }
        var relatives: [String] = []
        func scan(_ rel: String) throws(VSliceError) {
            let abs = rel.isEmpty ? root : (root as NSString).appendingPathComponent(rel)
            let names: [String]
            do { names = try fm.contentsOfDirectory(atPath: abs) } catch {
                throw VSliceError(.usage, "batch", path: abs, reason: "cannot list the folder")
            }
            for name in names.sorted() where !name.hasPrefix(".") {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                let child = (root as NSString).appendingPathComponent(childRel)
                var st = stat()
                guard lstat(child, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    if recursive && child != outRoot { try scan(childRel) }
                    continue
                }
                // Every other kind is a candidate: FIFOs, sockets and devices too, so that the transcode refuses
                // them with a clear message.
                let subject = pattern.contains("/") ? childRel : name
                if fnmatch(pattern, subject, 0) == 0 { relatives.append(childRel) }
            }
        }
        try scan("")
        return relatives.map { rel in
            let stem = (rel as NSString).deletingPathExtension
            return BatchItem(input: (root as NSString).appendingPathComponent(rel), relative: rel,
                             output: outRoot.map { ($0 as NSString).appendingPathComponent(stem + "." + ext) } ?? "")
        }
    }
}

/// A whole `vslice batch` request: what the job store keeps of a batch, so that `vslice resume --all` carries
/// on one that was interrupted.
public struct BatchRequest: Codable, Sendable {
    public var dir: String
    public var outDir: String
    public var pattern = "*"
    public var recursive = false
    public var container = "mp4"
    public var settings: TranscodeSettings
    public var force = false
    public var keepTemp = false
    public var keepLogs: Bool? = nil
    public var workRoot: String? = nil
    /// The running options given (nil: the defaults).
    public var maxAttempts: Int? = nil
    public var stallTimeout: Double? = nil
    /// Where each input's segments run (`--executor`).
    public var executor: ExecutorConfig = .local

    public init(dir: String, outDir: String, settings: TranscodeSettings) {
        self.dir = Paths.absolute(dir)
        self.outDir = Paths.absolute(outDir)
        self.settings = settings
    }

    /// The request of one input's transcode.
    public func request(_ item: BatchItem, force: Bool) -> TranscodeRequest {
        var r = TranscodeRequest(input: item.input, output: item.output, settings: settings, force: force, keepTemp: keepTemp,
                                 workRoot: workRoot.map(Paths.absolute), executor: executor)
        r.maxAttempts = maxAttempts
        r.stallTimeout = stallTimeout
        r.keepLogs = keepLogs ?? false
        return r
    }
}

/// What a batch did, input by input.
public struct BatchSummary: Encodable, Sendable {
    public var inputs = 0, done = 0, skipped = 0, failed = 0, redone = 0
    public var seconds = 0.0
    /// Ended by Ctrl-C (or SIGTERM): the inputs after the interrupted one were not looked at.
    public var interrupted = false
    /// Ended by a failure that repeats for every input (the processor cannot start): that error, and the
    /// inputs left unstarted.
    public var stopped: String? = nil
    public var notStarted = 0
    /// Failed inputs (relative path) → error.
    public var failures: [String: String] = [:]
    /// Skipped inputs (relative path) → why.
    public var skippedInputs: [String: String] = [:]

    public init(inputs: Int) { self.inputs = inputs }

    /// Skipped inputs that are not videos (the others were skipped because their output verifies), sorted.
    public var notVideos: [String] {
        skippedInputs.filter { $0.value != BatchRunner.verifiedReason }.keys.sorted()
    }
}

/// What a batch tells its caller about an input, beside the transcodes themselves.
public enum BatchEvent: Sendable {
    /// Not transcoded: not a video, or its output exists and verifies (`verified`).
    case skipped(BatchItem, reason: String, verified: Bool)
    /// Its output exists but the job store says it was made with other settings: it is made again.
    case redone(BatchItem, reason: String)
    /// Refused before its transcode: its output is another input's too.
    case conflict(BatchItem, VSliceError)
    /// Failed: refused before its transcode, or the transcode failed.
    case failed(BatchItem, VSliceError)
}

/// `vslice batch`'s policy: one task per input, one after the other. Files that are not videos are skipped;
/// an input whose output exists and verifies against it is skipped, unless the job store says that output was
/// made with other settings (then it is made again); an unfinished task for the same input and output resumes
/// (the transcode finds it); a failing input is reported and the batch goes on.
public struct BatchRunner {
    public var items: [BatchItem]
    public var settings: TranscodeSettings
    /// `--force`: existing outputs are replaced, never skipped.
    public var force: Bool
    /// The request, when made from one (then the job store records the batch for `resume --all`).
    public var request: BatchRequest? = nil

    /// The batch `request` asks for (see the other init); its settings' processor files hashed.
    public init(_ request: BatchRequest, createOutDir: Bool = true) throws(VSliceError) {
        try self.init(dir: request.dir, outDir: request.outDir, pattern: request.pattern, recursive: request.recursive,
                      container: request.container, settings: request.settings, force: request.force, createOutDir: createOutDir)
        var r = request
        r.settings = settings
        self.request = r
    }

    /// The reason recorded for an input skipped because its output verifies.
    public static let verifiedReason = "output exists and verifies"

    /// Checks the encoder options once (they would fail every input the same way), creates OUTDIR, and lists
    /// the inputs (see `BatchPlanner.items`).
    public init(dir: String, outDir: String, pattern: String, recursive: Bool, container: String,
                settings: TranscodeSettings, force: Bool, createOutDir: Bool = true) throws(VSliceError) {
        try EncoderCheck.check(settings, format: Container.format(forPath: "x." + container))
        do {
            if createOutDir { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) }
        } catch {
            throw VSliceError(.usage, "batch", path: outDir, reason: "cannot create the output folder: \(plainReason(error))")
        }
        items = try BatchPlanner.items(dir: dir, outDir: outDir, pattern: pattern, recursive: recursive, extension: container)
        // With the processor's files hashed, as the transcode's task stores them: else every output would look
        // made with other settings.
        self.settings = try settings.withProcessorFiles()
        self.force = force
    }

    /// Runs every input until a stop is requested: `transcode` runs one (with `force` when its output is to
    /// be replaced) and returns its error, if any. An interrupted transcode ends the batch (`interrupted`).
    public func run(store: JobStore, onEvent: (BatchEvent) -> Void,
                    transcode: (BatchItem, _ force: Bool) -> VSliceError?) throws(VSliceError) -> BatchSummary {
        let t0 = Date()
        var summary = BatchSummary(inputs: items.count)
        let record = try request.map { (r) throws(VSliceError) in
            try store.startBatch(dir: r.dir, outDir: r.outDir,
                                 requestJson: String(decoding: (try? JSONEncoder().encode(r)) ?? Data(), as: UTF8.self))
        }
        defer {
            let status = summary.stopped != nil ? "stopped" : summary.interrupted || Cancellation.stopRequested ? "interrupted" : "done"
            if let record { try? store.endBatch(record, status: status) }
        }
        var outputs: [String: String] = [:]
        func fail(_ item: BatchItem, _ error: VSliceError) {
            summary.failed += 1
            summary.failures[item.relative] = error.description
            onEvent(.failed(item, error))
        }
        for (n, item) in items.enumerated() {
            if Cancellation.stopRequested { break }
            if let other = outputs[item.output] {
                let e = VSliceError(.usage, "batch", path: item.input, reason: "its output \(item.output) is also \(other)'s; rename one")
                onEvent(.conflict(item, e))
                fail(item, e)
                continue
            }
            outputs[item.output] = item.input
            guard let force = decide(item, store: store, summary: &summary, onEvent: onEvent) else { continue }
            do {
                try FileManager.default.createDirectory(atPath: (item.output as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
            } catch {
                fail(item, VSliceError(.usage, "batch", path: item.output, reason: "cannot create its folder"))
                continue
            }
            if let error = transcode(item, force) {
                if error.kind == .interrupted {
                    summary.interrupted = true
                    break
                }
                if error.everyInput {
                    // The check proved it: the same program fails the same way for every input. One message, not one per input.
                    summary.failed += 1
                    summary.failures[item.relative] = error.description
                    summary.stopped = error.description
                    summary.notStarted = items.count - n - 1
                    break
                }
                fail(item, error)
            } else {
                summary.done += 1
            }
        }
        summary.seconds = Date().timeIntervalSince(t0)
        return summary
    }

    /// Whether `item` is transcoded, and with `force`: nil when it is skipped (not a video, or its output
    /// exists and verifies); force when its output is to be replaced.
    func decide(_ item: BatchItem, store: JobStore, summary: inout BatchSummary, onEvent: (BatchEvent) -> Void) -> Bool? {
        if let why = MediaSniff.whyNotVideo(item.input) {
            summary.skipped += 1
            summary.skippedInputs[item.relative] = why
            onEvent(.skipped(item, reason: why, verified: false))
            return nil
        }
        guard FileManager.default.fileExists(atPath: item.output) && !force else { return force }
        if let previous = Self.madeWithOtherSettings(item.output, settings: settings, store: store) {
            // Verifying would pass (same frames, other quality): the ledger knows better. Made again.
            summary.redone += 1
            onEvent(.redone(item, reason: "made with other settings (\(previous))"))
            return true
        }
        if let check = try? Verifier.verify(output: item.output, against: item.input, filter: settings.videoFilter,
                                            rate: processorRate(item.output, store: store)), check.ok {
            summary.skipped += 1
            summary.skippedInputs[item.relative] = Self.verifiedReason
            onEvent(.skipped(item, reason: Self.verifiedReason, verified: true))
            return nil
        }
        return false
    }

    /// The processor's rate the output was made with: as given, else as the job store's task for it learnt it
    /// (nil without a processor, or when unknown: then verification counts the source's frames).
    func processorRate(_ output: String, store: JobStore) -> Ratio? {
        guard let process = settings.process else { return nil }
        if let given = process.rate { return given }
        let path = URL(fileURLWithPath: output).standardizedFileURL.path
        guard let tasks = try? store.tasks(),
              let last = tasks.filter({ $0.output == path && $0.status == .done }).max(by: { $0.updatedAt < $1.updatedAt }),
              let json = try? store.eventDone(last.id, .plan)?.detail,
              let plan = try? JSONDecoder().decode(Plan.self, from: Data(json.utf8)) else { return nil }
        return plan.processor?.rate
    }

    /// When the job store's newest finished task for `output` was made with settings other than these: how
    /// they differ ("crf=30 → crf=20"); nil when they are the same or the store does not know the output.
    public static func madeWithOtherSettings(_ output: String, settings: TranscodeSettings, store: JobStore) -> String? {
        let path = URL(fileURLWithPath: output).standardizedFileURL.path
        guard let tasks = try? store.tasks(),
              let last = tasks.filter({ $0.output == path && $0.status == .done }).max(by: { $0.updatedAt < $1.updatedAt })
        else { return nil }
        // The processor's identity is heard by each task's check, not yet: the one a task recorded is not compared.
        return TranscodeSettings.difference(stored: last.settingsSignature, now: settings.outputSignature, identityKnown: false)
    }
}
