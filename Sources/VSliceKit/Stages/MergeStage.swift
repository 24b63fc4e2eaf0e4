import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// mux: joins the pieces of the audio tracks encoded in pieces, then concatenates the segments and interleaves the
/// tracks, in one streaming pass, into the part file beside
/// the output (same filesystem, so publishing is a rename). A finished part file is recorded with its size and
/// checksum and reused by a resume only while it still has them; every segment is checked against what its
/// commit recorded before it is merged.
enum MergeStage: Stage {
    static let node = Node.mux
    static let inputs: [Node] = [.encode, .audio]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let store = ctx.store, part = ctx.partPath
        if ctx.published {
            ctx.logger.info("output already published by the interrupted run; verifying it")
        } else if let muxed = try store.eventDone(ctx.taskId, node), let recorded = muxed.detail,
                  FileOps.size(part) != nil, recorded == FileOps.signature(part) {
            ctx.logger.info("merged file from the interrupted run kept", metadata: ["file": "\(part)"])
        } else {
            for row in try store.segments(task: ctx.taskId) + store.audioPieces(task: ctx.taskId) where !row.fileIsIntact {
                try? store.resetSegment(ctx.taskId, row.id)
                let what = row.eventId.isNode(.audio) ? "audio piece" : "segment"
                throw VSliceError(.processing, "merge", path: row.file,
                                  reason: "\(what) \(row.ord) is missing or differs from what was recorded; run the same command to redo it")
            }
            let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
            try AudioStage.joinPieces(ctx)
            let merger = try makeMerger(ctx)
            // Recorded on the mux's trace: serial work, as the merge's.
            let joined = (wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0)
            _ = try ctx.traced(node) { (_) throws(VSliceError) in
                // The merge writes a file of its own: a previous holder still writing the old one cannot touch it.
                try? FileManager.default.removeItem(atPath: part)
                do throws(VSliceError) {
                    let merged = try merger.run()
                    guard let signature = FileOps.signature(part) else {
                        throw VSliceError(.processing, "read back", path: part, reason: "the merged file cannot be read")
                    }
                    ctx.logger.info("merged", metadata: ["video packets": "\(merged.videoPackets)", "track packets": "\(merged.audioPackets)",
                                                         "opening DTS repaired": "\(merged.dtsRepaired)"])
                    return StepRecord(value: (), detail: signature, framesOut: merged.videoPackets, bytes: merged.bytes, before: joined)
                } catch {
                    // A half-written merge is worth nothing (and may be what filled the disk).
                    if store.holdsLease(ctx.taskId) { try? FileManager.default.removeItem(atPath: part) }
                    throw error
                }
            }
        }
        ctx.onEvent(.merged)
        return .done
    }

    static func makeMerger(_ ctx: StageContext) throws(VSliceError) -> Merger {
        let streams = ctx.extras.streams, layout = ctx.extras.layout, video = ctx.video.streamIndex
        // A filter may put the first frame before every source stream's start (fps rounding to the file's start).
        let firstVideo = ctx.extras.filterTiming == nil ? nil : try ctx.segmentPaths.first.flatMap { (p) throws(VSliceError) in try Merger.firstFrameTime(segment: p) }
        let tracks = zip(streams.audio.map(\.stream) + streams.subtitles.map(\.stream), ctx.trackPaths).map {
            Merger.Track(path: $0.1, tags: layout.streams[$0.0].tags, disposition: layout.streams[$0.0].disposition)
        }
        var merger = Merger(segments: ctx.segmentPaths, tracks: tracks, output: ctx.partPath, format: ctx.format,
                            base: timelineBase(ctx.probe, audioStreams: streams.audio.map(\.stream), firstVideo: firstVideo),
                            displayMatrix: ctx.probe.displayMatrix)
        merger.videoTags = layout.streams[video].tags
        merger.videoDisposition = layout.streams[video].disposition
        merger.layout = layout
        merger.attachments = streams.attachments
        merger.attachedPictures = streams.attachedPictures
        merger.hdr = ctx.extras.hdr
        merger.frameRate = constantRate(ctx.probe, filter: ctx.extras.filterTiming, processor: ctx.plan.processor?.rate)
        // Matroska keeps a block's duration only beside a default one (as ffmpeg's own copy of a VFR source has: its
        // average rate): with it, the last frame keeps its length and every frame of another length says its own.
        if merger.frameRate == nil, ctx.format == "matroska", ctx.extras.filterTiming == nil {
            merger.frameRate = averageRate(ctx.probe, processor: ctx.plan.processor?.rate)
        }
        return merger
    }
}

/// Where the merged output's timeline starts, and its rate when constant.
extension MergeStage {
    /// The source time that becomes 0 in a filtered output: the earliest start of the streams used, or the
    /// first kept filtered frame (`firstVideo`) when that is earlier (a rate change that lays its first frame
    /// before the video's first frame and the sound).
    static func timelineBase(_ probe: Probe, audioStreams: [Int]? = nil, firstVideo: Timestamp?) -> Timestamp {
        let base = timelineBase(probe, audioStreams: audioStreams)
        guard let v = firstVideo else { return base }
        return Double(v.ticks) * v.timeBase.value < Double(base.ticks) * base.timeBase.value ? v : base
    }

    /// The output's frame rate when it is constant (for Matroska's default duration): the source's when it is
    /// CFR, the filter's when it states one, times a processor's rate; nil for VFR.
    /// The source video's average rate (times a processor's), whether or not it is constant.
    static func averageRate(_ probe: Probe, processor: Ratio?) -> Ratio? {
        guard let v = probe.video, var r = probe.report.streams[v.streamIndex].avgFrameRate, r.num > 0, r.den > 0 else { return nil }
        if let k = processor, k.num != k.den { r = r.times(k) }
        return r
    }

    static func constantRate(_ probe: Probe, filter: FilterTiming?, processor: Ratio? = nil) -> Ratio? {
        var rate: Ratio
        if let filter {
            guard let r = filter.rate else { return nil }
            rate = r
        } else {
            guard probe.report.variableFrameRate == false, let v = probe.video,
                  let r = probe.report.streams[v.streamIndex].avgFrameRate, r.num > 0, r.den > 0 else { return nil }
            rate = r
        }
        // A processor's P frames per Q split each interval evenly: a constant rate stays constant, P/Q times it.
        if let k = processor, k.num != k.den { rate = rate.times(k) }
        return rate
    }

    /// The source time that becomes 0 in the output: the earliest start of the streams used.
    /// `audioStreams`: the audio streams kept (nil: the best one, as `probe.audio`).
    static func timelineBase(_ probe: Probe, audioStreams: [Int]? = nil) -> Timestamp {
        guard let v = probe.video else { return Timestamp(ticks: 0, timeBase: Ratio(num: 1, den: 1)) }
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
