import Foundation
import Logging
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// What `vslice batch --dry-run` and `vslice plan DIR` print: each input's plan and wall-time estimate (as
/// `vslice plan` makes them), the inputs a batch would skip or refuse, and the whole batch's estimate — its
/// inputs run one after another, each with `--jobs` segments at once. Nothing is written.
public struct BatchEstimate: Encodable, Sendable {
    public struct Input: Encodable, Sendable {
        public var input: String
        public var relative: String
        public var output: String?
        public var frames: Int
        public var segments: Int
        /// Nil when the costs could not be measured.
        public var estimate: WallEstimate?
    }

    public var inputs: [Input] = []
    /// Inputs not transcoded (relative path → why: not a video, or the output exists and verifies).
    public var skipped: [String: String] = [:]
    /// Inputs refused by their checks (relative path → the error).
    public var failed: [String: String] = [:]
    /// The estimates added up: the batch's wall time.
    public var seconds: Double = 0
    /// Inputs whose costs could not be measured (not in `seconds`).
    public var unestimated = 0

    public init() {}

    /// Plans each item that is not skipped: `request` makes its transcode's request (nil: skipped, as
    /// `skipped` says why); `onInput` hears "file i of N" before each is planned.
    public static func make(_ items: [BatchItem], logger: Logger, onInput: (Int, Int, BatchItem) -> Void,
                            request: (BatchItem, inout BatchEstimate) -> TranscodeRequest?) -> BatchEstimate {
        var all = BatchEstimate()
        for (n, item) in items.enumerated() {
            if Cancellation.stopRequested { break }
            guard let r = request(item, &all) else { continue }
            onInput(n + 1, items.count, item)
            do throws(VSliceError) {
                let p = try Transcoder(request: r, logger: logger).preview(stallTimeout: r.stallTimeout ?? Transcoder.RunOptions().stallTimeout)
                all.inputs.append(Input(input: item.input, relative: item.relative, output: item.output.isEmpty ? nil : item.output,
                                        frames: p.plan.frameCount, segments: p.plan.segments.count, estimate: p.estimate))
                if let e = p.estimate { all.seconds += e.seconds } else { all.unestimated += 1 }
            } catch {
                all.failed[item.relative] = error.description
            }
        }
        return all
    }

    /// `vslice plan DIR`: every file of `dir` (not its subfolders) that is a video, planned with these settings.
    public static func folder(_ dir: String, settings: TranscodeSettings, executor: ExecutorConfig, logger: Logger,
                              onInput: (Int, Int, BatchItem) -> Void) throws(VSliceError) -> BatchEstimate {
        let items = try BatchPlanner.items(dir: dir, outDir: nil, pattern: "*", recursive: false, extension: "mp4")
        return make(items, logger: logger, onInput: onInput) { item, all in
            if let why = MediaSniff.whyNotVideo(item.input) {
                all.skipped[item.relative] = why
                return nil
            }
            var r = TranscodeRequest(input: item.input, output: item.input + ".plan.mp4", settings: settings)
            r.executor = executor
            return r
        }
    }
}

extension BatchRunner {
    /// `vslice batch --dry-run`: what the batch would do, input by input, with nothing written (OUTDIR is not
    /// created): the inputs it would skip (not videos, outputs that verify), and each other's plan and estimate.
    public func estimate(store: JobStore, logger: Logger, onInput: (Int, Int, BatchItem) -> Void) -> BatchEstimate {
        guard let batch = request else { return BatchEstimate() }
        var summary = BatchSummary(inputs: items.count)
        return BatchEstimate.make(items, logger: logger, onInput: onInput) { item, all in
            guard let force = decide(item, store: store, summary: &summary, onEvent: { _ in }) else {
                all.skipped[item.relative] = summary.skippedInputs[item.relative] ?? "skipped"
                return nil
            }
            return batch.request(item, force: force)
        }
    }
}
