import Foundation
import Synchronization

/// audio: every kept audio track re-encoded (in pieces where its encoder's pieces join cleanly and it is long
/// enough, else in one pass) or stream-copied, and the subtitle tracks extracted, beside the video branch, into
/// `tracks/`: written as a folder of its own and renamed into place by the commit that records the node. Each
/// audio piece is a segment of this node (`TASK_audio_N`) with its own traces and sealed file, so a resume redoes
/// only the pieces not done. Nothing to do without such tracks, or when an earlier run finished them.
enum AudioStage: Stage {
    static let node = Node.audio
    static let inputs: [Node] = [.probe]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let paths = ctx.trackPaths
        guard !paths.isEmpty else { return .done }
        if try ctx.store.eventDone(ctx.taskId, node) != nil && paths.allSatisfy({ (try? PacketFileReader(path: $0)) != nil }) {
            return .done
        }
        try? FileManager.default.removeItem(atPath: ctx.tracksDir)
        try ctx.traced(node) { (trace) throws(VSliceError) in
            let tmp = ctx.tracksDir + ".\(trace.prefix(8)).tmp"
            do throws(VSliceError) {
                do {
                    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
                } catch {
                    throw VSliceError(.processing, "create folder", path: tmp, reason: error.localizedDescription)
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

    /// Writes every track's packet file into `dir`: the pieces of the tracks that are cut run first (on
    /// `--jobs` threads) and are joined; the other re-encoded tracks are encoded in one pass; then the copies
    /// and the subtitles.
    static func writeTracks(_ ctx: StageContext, into dir: String) throws(VSliceError) -> (packets: Int, bytes: Int64) {
        let streams = ctx.extras.streams
        func inDir(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        var planned = try planPieces(ctx)
        let missed = try AudioPieceRunner(ctx: ctx).run(planned.values.flatMap { $0 })
        for track in missed {
            ctx.logger.warning("audio track \(track): a piece found no frame where the map had one after seeking; encoding the track in one pass")
            planned[track] = nil
        }
        var packets = 0
        var bytes: Int64 = 0
        var copied: [(stream: Int, path: String)] = []
        for (track, name) in zip(streams.audio, ctx.audioTrackNames) {
            guard let codec = track.encoder else { copied.append((track.stream, inDir(name))); continue }
            if let pieces = planned[track.ordinal] {
                let joined = try AudioPieceJoiner.join(pieces.map { ctx.audioPiecePath($0.order) }, into: inDir(name))
                packets += joined.packets
                bytes += joined.bytes
            } else {
                let r = try AudioEncoder(source: ctx.input, audioStream: track.stream, codec: codec, settings: ctx.settings,
                                         outputPath: inDir(name), expect: ctx.identity).run()
                packets += r.packets
                bytes += r.bytes
            }
        }
        packets += try AudioCopier(source: ctx.input, streams: copied.map(\.stream), outputs: copied.map(\.path),
                                   expect: ctx.identity).run()
        try SubtitleExtractor(source: ctx.input, tracks: streams.subtitles, outputs: ctx.subtitleTrackNames.map(inDir),
                              expect: ctx.identity).run()
        return (packets, bytes)
    }

    /// The pieces of every re-encoded track that is cut, by track number: each such track is mapped (decoded
    /// once, to know where the single pass lays every frame), laid out on its encoder's frame grid, and its
    /// pieces recorded as the audio event's segments, numbered across the tracks in source order.
    static func planPieces(_ ctx: StageContext) throws(VSliceError) -> [Int: [AudioPiece]] {
        var planned: [Int: [AudioPiece]] = [:]
        var order = 0
        for track in ctx.extras.streams.audio {
            guard let codec = track.encoder, ctx.settings.audioPieceSeconds != 0 else { continue }
            guard AudioJoin.whyOnePass(codec) == nil else { continue }
            let map = try AudioTrackMap.scan(source: ctx.input, stream: track.stream, codec: codec, bitrate: ctx.settings.audioBitrate,
                                             expect: ctx.identity)
            let shape = map.shape
            guard let warmup = AudioJoin.warmupFrames(codec, rate: shape.rate, frameSize: shape.frameSize) else { continue }
            if let why = map.whyOnePass {
                ctx.logger.info("audio track \(track.ordinal) in one pass: \(why)")
                continue
            }
            let layout = AudioPieceLayout.make(totalSamples: map.totalSamples, frameSize: shape.frameSize,
                                               pieceSamples: AudioJoin.pieceSamples(seconds: ctx.settings.audioPieceSeconds, rate: shape.rate))
            guard layout.count > 1 else { continue }
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

extension StageContext {
    /// Audio piece `order`'s sealed file in the work folder.
    func audioPiecePath(_ order: Int) -> String {
        (work as NSString).appendingPathComponent(String(format: "audio-piece-%05d.vseg", order))
    }
}

/// Runs audio pieces on threads of this process, `--jobs` at a time: each attempt is traced as a segment of the
/// audio event, its file sealed by the commit that records it, and a failed attempt is retried as a video
/// segment's is. Pieces an earlier run finished (recorded done, file intact) are not run again.
struct AudioPieceRunner {
    let ctx: StageContext

    /// Runs the pieces not done yet. Returns the tracks one of whose pieces did not meet, after its seek, the
    /// frame the map recorded (their other pieces are left alone: such a track is encoded in one pass).
    func run(_ pieces: [AudioPiece]) throws(VSliceError) -> Set<Int> {
        let rows = Dictionary(uniqueKeysWithValues: try ctx.store.audioPieces(task: ctx.taskId).map { ($0.ord, $0) })
        let todo = pieces.filter { p in
            guard let row = rows[p.order], row.status == .done else { return true }
            return !Transcoder.segmentFileIsIntact(row)
        }.sorted { $0.order < $1.order }
        if todo.count < pieces.count { ctx.logger.info("\(pieces.count - todo.count) of \(pieces.count) audio pieces already done") }
        let missed = Mutex(Set<Int>())
        let errors = WorkerPool.run(todo, jobs: ctx.settings.jobs) { (piece: AudioPiece, _) throws(VSliceError) in
            guard !missed.withLock({ $0.contains(piece.track) }) else { return }
            do throws(VSliceError) { try runWithRetries(piece) } catch {
                guard error.operation == AudioPieceEncoder.missedStart else { throw error }
                missed.withLock { _ = $0.insert(piece.track) }
            }
        }
        if let e = errors.first(where: { $0.kind == .resumeRefused }) ?? errors.first { throw e }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "encode audio", path: ctx.input, reason: "interrupted; resume by running the same command")
        }
        return missed.withLock { $0 }
    }

    private func runWithRetries(_ piece: AudioPiece) throws(VSliceError) {
        var attempt = 0
        while true {
            attempt += 1
            do throws(VSliceError) { return try runOnce(piece) } catch {
                // Only processing failures that may pass are worth another try (RetryPolicy.swift).
                guard error.kind != .resumeRefused, error.worthRetry, attempt < ctx.options.maxAttempts, !Cancellation.stopRequested else {
                    throw error
                }
                ctx.logger.warning("audio piece failed; retrying", metadata: ["piece": "\(piece.order)", "error": "\(error)"])
                Thread.sleep(forTimeInterval: 0.5 * Double(1 << (attempt - 1)))
            }
        }
    }

    /// One traced attempt: encoded under a name of its own, renamed into place by the commit that records it.
    private func runOnce(_ piece: AudioPiece) throws(VSliceError) {
        let store = ctx.store, task = ctx.taskId, id = LedgerID.audioPiece(task, piece.order), path = ctx.audioPiecePath(piece.order)
        let trace = try store.beginEvent(task, .audio, segment: id)
        let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
        let tmp = path + ".\(trace.prefix(8)).tmp"
        do throws(VSliceError) {
            let r = try AudioPieceEncoder(source: ctx.input, piece: piece, outputPath: tmp, expect: ctx.identity).run()
            try store.endStep(trace: trace, task: task, node: .audio,
                              segment: .init(id: id, frames: r.packets, size: r.bytes, checksum: Int64(r.checksum)),
                              figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0,
                                             framesIn: Int(r.samples / max(piece.timeline.holeThreshold, 1)), framesOut: r.packets, bytes: r.bytes),
                              error: nil, detail: nil, seal: .init(from: tmp, to: path))
            Fault.hit("audio-piece")
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            if error.kind != .resumeRefused {
                try? store.endStep(trace: trace, task: task, node: .audio, segment: .init(id: id, frames: 0, size: 0, checksum: 0),
                                   figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: error.description)
            }
            throw error
        }
    }
}
