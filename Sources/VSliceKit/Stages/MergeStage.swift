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
            for row in try store.segments(task: ctx.taskId) + store.audioPieces(task: ctx.taskId) where !Transcoder.segmentFileIsIntact(row) {
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
                            base: Transcoder.timelineBase(ctx.probe, audioStreams: streams.audio.map(\.stream), firstVideo: firstVideo),
                            displayMatrix: ctx.probe.displayMatrix)
        merger.videoTags = layout.streams[video].tags
        merger.videoDisposition = layout.streams[video].disposition
        merger.layout = layout
        merger.attachments = streams.attachments
        merger.attachedPictures = streams.attachedPictures
        merger.hdr = ctx.extras.hdr
        merger.frameRate = Transcoder.constantRate(ctx.probe, filter: ctx.extras.filterTiming, processor: ctx.plan.processor?.rate)
        return merger
    }
}
