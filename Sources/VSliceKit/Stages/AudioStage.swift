import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// audio: the kept audio tracks not encoded in pieces re-encoded in one pass or stream-copied, and the subtitle
/// tracks extracted, beside the video branch, into `tracks/`: written as a folder of its own and renamed into
/// place by the commit that records the node. The tracks encoded in pieces are planned by `PlanStage`
/// (`planPieces`), their pieces encoded by the executor beside the video segments (each a segment of this node,
/// `TASK_audio_N`, with its own traces and sealed file) and joined by the merge. Nothing to do without such
/// tracks, or when an earlier run finished them.
enum AudioStage: Stage {
    static let node = Node.audio
    static let inputs: [Node] = [.plan]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let paths = ctx.trackPaths.filter { $0.hasPrefix(ctx.tracksDir + "/") }
        guard !paths.isEmpty else { return .done }
        if try ctx.store.eventDone(ctx.taskId, node) != nil && paths.allSatisfy({ (try? PacketFileReader(path: $0)) != nil }) {
            return .done
        }
        try? FileManager.default.removeItem(atPath: ctx.tracksDir)
        try ctx.traced(node) { (trace) throws(VSliceError) in
            let tmp = ctx.tracksDir + ".\(trace.short).tmp"
            do throws(VSliceError) {
                do {
                    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
                } catch {
                    throw VSliceError(.processing, "create folder", path: tmp, reason: plainReason(error))
                }
                let written = try writeTracks(ctx, into: tmp)
                return StepRecord(value: (), framesOut: written.packets, bytes: written.bytes, seal: .init(from: tmp, to: ctx.tracksDir))
            } catch {
                try? FileManager.default.removeItem(atPath: tmp)
                throw error
            }
        }
        ctx.onEvent(.audioDone)
        return .done
    }

    /// Writes the packet file of every track not encoded in pieces into `dir`: the re-encoded ones in one pass,
    /// then the copies and the subtitles.
    static func writeTracks(_ ctx: StageContext, into dir: String) throws(VSliceError) -> (packets: Int, bytes: Int64) {
        let streams = ctx.extras.streams, pieced = ctx.audioPieces
        func inDir(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        var packets = 0
        var bytes: Int64 = 0
        var copied: [(stream: Int, path: String)] = []
        for (track, name) in zip(streams.audio, ctx.audioTrackNames) where pieced[track.ordinal] == nil {
            guard let codec = track.encoder else { copied.append((track.stream, inDir(name))); continue }
            let r = try AudioEncoder(source: ctx.input, audioStream: track.stream, codec: codec, settings: ctx.settings,
                                     outputPath: inDir(name), expect: ctx.identity).run()
            packets += r.packets
            bytes += r.bytes
        }
        packets += try AudioCopier(source: ctx.input, streams: copied.map(\.stream), outputs: copied.map(\.path),
                                   expect: ctx.identity).run()
        try SubtitleExtractor(source: ctx.input, tracks: streams.subtitles, outputs: ctx.subtitleTrackNames.map(inDir),
                              expect: ctx.identity).run()
        return (packets, bytes)
    }

    /// Joins each pieced track's pieces into its file in `joinedDir` (the merge's input), unless an earlier run did.
    static func joinPieces(_ ctx: StageContext) throws(VSliceError) {
        let pieced = ctx.audioPieces
        guard !pieced.isEmpty else { return }
        do { try FileManager.default.createDirectory(atPath: ctx.joinedDir, withIntermediateDirectories: true) } catch {
            throw VSliceError(.processing, "create folder", path: ctx.joinedDir, reason: plainReason(error))
        }
        for (track, name) in zip(ctx.extras.streams.audio, ctx.audioTrackNames) {
            guard let pieces = pieced[track.ordinal] else { continue }
            let path = (ctx.joinedDir as NSString).appendingPathComponent(name)
            let tmp = path + ".tmp"
            _ = try AudioPieceJoiner.join(pieces.map { ctx.audioPiecePath($0.order) }, into: tmp)
            if rename(tmp, path) != 0 {
                throw VSliceError(.processing, "join audio pieces", path: path, reason: String(cString: strerror(errno)))
            }
        }
    }

    /// The pieces of every re-encoded track that is cut, by track number: each such track is mapped (decoded
    /// once, to know where the single pass lays every frame), laid out on its encoder's frame grid, and its
    /// pieces recorded as the audio event's segments, numbered across the tracks in source order.
    static func planPieces(_ ctx: StageContext) throws(VSliceError) -> [Int: [AudioPiece]] {
        var planned: [Int: [AudioPiece]] = [:]
        var order = 0
        let loudness = ctx.settings.context?.loudness != nil
        func onePass(_ track: Int, _ why: String) throws(VSliceError) {
            guard loudness else { return }
            throw VSliceError(.usage, "plan audio", path: ctx.input,
                              reason: "--loudness adjusts the audio in pieces, and audio track \(track) is encoded in one pass: \(why)")
        }
        for track in ctx.extras.streams.audio {
            guard let codec = track.encoder, ctx.settings.audioPieceSeconds != 0 else { continue }
            if let why = AudioJoin.whyOnePass(codec) {
                try onePass(track.ordinal, why)
                continue
            }
            let map = try AudioTrackMap.scan(source: ctx.input, stream: track.stream, codec: codec, bitrate: ctx.settings.audioBitrate,
                                             expect: ctx.identity)
            let shape = map.shape
            guard let warmup = AudioJoin.warmupFrames(codec, rate: shape.rate, frameSize: shape.frameSize) else { continue }
            if let why = map.whyOnePass {
                try onePass(track.ordinal, why)
                ctx.logger.info("audio track \(track.ordinal) in one pass: \(why)")
                continue
            }
            let layout = AudioPieceLayout.make(totalSamples: map.totalSamples, frameSize: shape.frameSize,
                                               pieceSamples: AudioJoin.pieceSamples(seconds: ctx.settings.audioPieceSeconds, rate: shape.rate))
            guard layout.count > 1 || loudness else { continue }
            planned[track.ordinal] = map.pieces(layout, stream: track.stream, track: track.ordinal, codec: codec,
                                                bitrate: ctx.settings.audioBitrate, firstOrder: order, preroll: warmup.preroll,
                                                silence: warmup.silence)
            order += layout.count
            ctx.logger.info("audio track \(track.ordinal) in \(layout.count) pieces")
        }
        let all = planned.values.flatMap { $0 }.sorted { $0.order < $1.order }
        try ctx.store.ensureAudioPieces(task: ctx.taskId, pieces: all.map { ($0.order, $0.packets, ctx.audioPiecePath($0.order)) })
        return planned
    }
}
