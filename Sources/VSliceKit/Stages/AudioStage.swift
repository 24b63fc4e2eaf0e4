import Foundation

/// audio: every kept audio track re-encoded once (or stream-copied) and the subtitle tracks extracted, beside
/// the video branch, into `tracks/`: written as a folder of its own and renamed into place by the commit that
/// records the node. Nothing to do without such tracks, or when an earlier run finished them.
enum AudioStage: Stage {
    static let node = Node.audio
    static let inputs: [Node] = [.probe]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let streams = ctx.extras.streams, paths = ctx.trackPaths
        guard !paths.isEmpty else { return .done }
        if try ctx.store.eventDone(ctx.taskId, node) != nil && paths.allSatisfy({ (try? PacketFileReader(path: $0)) != nil }) {
            return .done
        }
        try? FileManager.default.removeItem(atPath: ctx.tracksDir)
        try ctx.traced(node) { (trace) throws(VSliceError) in
            let tmp = ctx.tracksDir + ".\(trace.prefix(8)).tmp"
            func inTmp(_ name: String) -> String { (tmp as NSString).appendingPathComponent(name) }
            do throws(VSliceError) {
                do {
                    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
                } catch {
                    throw VSliceError(.processing, "create folder", path: tmp, reason: error.localizedDescription)
                }
                var packets = 0
                var bytes: Int64 = 0
                var copied: [(stream: Int, path: String)] = []
                for (track, name) in zip(streams.audio, ctx.audioTrackNames) {
                    guard let codec = track.encoder else { copied.append((track.stream, inTmp(name))); continue }
                    let r = try AudioEncoder(source: ctx.input, audioStream: track.stream, codec: codec, settings: ctx.settings,
                                             outputPath: inTmp(name), expect: ctx.identity).run()
                    packets += r.packets
                    bytes += r.bytes
                }
                packets += try AudioCopier(source: ctx.input, streams: copied.map(\.stream), outputs: copied.map(\.path),
                                           expect: ctx.identity).run()
                try SubtitleExtractor(source: ctx.input, tracks: streams.subtitles, outputs: ctx.subtitleTrackNames.map(inTmp),
                                      expect: ctx.identity).run()
                return StepRecord(value: (), framesOut: packets, bytes: bytes, seal: .init(from: tmp, to: ctx.tracksDir))
            } catch {
                try? FileManager.default.removeItem(atPath: tmp)
                throw error
            }
        }
        ctx.onEvent(.audioDone)
        return .done
    }
}
