import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Where the picture changes: every frame of the video, scaled down to 256 pixels wide, through libavfilter's
/// `scdet` (scene change detection by the mean absolute difference of consecutive frames). Cuts placed at
/// such frames do not show: the frame after a cut starts a new picture anyway.
public enum SceneDetect {
    /// Presentation timestamps (in the stream's time base) of the frames `scdet` marks as a scene change,
    /// ascending. `threshold` is scdet's (0–100; 10 is its default).
    public static func changes(path: String, videoStream: Int, threshold: Double = 10,
                               expect: FileIdentity? = nil) throws(VSliceError) -> [Int64] {
        let watch = WorkWatch()
        let input = try InputFile(path: path, watch: watch, expect: expect)
        input.keepOnly(videoStream)
        let st = input.stream(videoStream)
        let decoder = try Decoder(stream: st, path: path, threads: ProcessInfo.processInfo.activeProcessorCount)
        // Scaling first makes the pass cheap; the difference of small pictures finds the same cuts.
        let graph = try VideoFilterGraph(description: "scale=w=256:h=-2:flags=fast_bilinear,scdet=threshold=\(threshold)",
                                         decoder: decoder.ctx, timeBase: st.pointee.time_base, outputFormats: [], path: path)
        let packet = Packet(), frame = Frame(), filtered = Frame()
        var found: [Int64] = []
        func pull() throws(VSliceError) {
            while try graph.pull(filtered) == .ok {
                if filtered.metadata("lavfi.scd.time") != nil, filtered.pts != AV_NOPTS { found.append(filtered.pts) }
            }
        }
        func drain() throws(VSliceError) {
            while try decoder.receive(frame) == .ok {
                frame.pts = frame.bestEffortTimestamp
                try graph.push(frame)
                try pull()
                try watch.check("detect scenes", path: path)
            }
        }
        while try input.read(into: packet) {
            guard packet.streamIndex == videoStream else { continue }
            while try decoder.send(packet) == .again { try drain() }
            try drain()
        }
        _ = try decoder.send(nil)
        try drain()
        try graph.push(nil)
        try pull()
        return found.sorted()
    }
}
