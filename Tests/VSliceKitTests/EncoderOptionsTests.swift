import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

@Suite("the options each segment's encoder is opened with")
struct EncoderOptionsTests {
    private func settings(_ codec: String, overlap: (Int, Int), params: String? = nil, vf: String? = nil) -> TranscodeSettings {
        var s = TranscodeSettings()
        s.videoCodec = codec
        s.overlapBefore = overlap.0
        s.overlapAfter = overlap.1
        s.videoFilter = vf
        s.threads = 1
        if let params { s.codecOptions["x265-params"] = params }
        return s
    }

    private func x265Params(_ options: [(String, String)]) -> [String: String] {
        guard let list = options.first(where: { $0.0 == "x265-params" })?.1 else { return [:] }
        var out: [String: String] = [:]
        for item in list.split(separator: ":") {
            let kv = item.split(separator: "=", maxSplits: 1)
            out[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return out
    }

    @Test("x265 with overlap buffers: chunk bounds from 1, closed GOP and no info SEI on every segment")
    func x265Chunk() throws {
        let s = settings("libx265", overlap: (3, 5), params: "lossless=1")
        // 3 buffer frames, 37 kept, 5 after: x265 keeps its frames 4…40 (counted from 1).
        let middle = x265Params(s.segmentEncoderOptions(before: 3, kept: 37, after: 5).options)
        #expect(middle["chunk-start"] == "4" && middle["chunk-end"] == "40")
        #expect(middle["open-gop"] == "0" && middle["info"] == "0" && middle["lossless"] == "1")
        // The first segment has nothing before it; the last nothing after.
        let first = x265Params(s.segmentEncoderOptions(before: 0, kept: 37, after: 5).options)
        #expect(first["chunk-start"] == "1" && first["chunk-end"] == "37")
        // A segment without buffers is not chunked, but has the same stream headers as the others.
        let plain = x265Params(s.segmentEncoderOptions(before: 0, kept: 37, after: 0).options)
        #expect(plain["chunk-start"] == nil && plain["chunk-end"] == nil)
        #expect(plain["open-gop"] == "0" && plain["info"] == "0")
        try s.validate()
    }

    @Test("no chunking without buffers, with a filter (cut by time), or for other encoders")
    func noChunk() {
        for s in [settings("libx265", overlap: (0, 0)), settings("libx265", overlap: (2, 2), vf: "hqdn3d"),
                  settings("libx264", overlap: (2, 2)), settings("libsvtav1", overlap: (2, 2))] {
            let p = x265Params(s.segmentEncoderOptions(before: 2, kept: 10, after: 2).options)
            #expect(p["chunk-start"] == nil && p["chunk-end"] == nil && p["open-gop"] == nil, "\(s.videoCodec) \(s.videoFilter ?? "-")")
        }
    }

    @Test("--overlap with SVT-AV1 is refused without a filter (it ignores forced keyframes), allowed with one")
    func svtOverlap() throws {
        for ov in [(2, 0), (0, 2)] {
            #expect(throws: VSliceError.self) { try settings("libsvtav1", overlap: ov).validate() }
        }
        try settings("libsvtav1", overlap: (2, 2), vf: "hqdn3d").validate()
        try settings("libsvtav1", overlap: (0, 0)).validate()
    }

    @Test("a user's own chunk-start, chunk-end, open-gop or info with --overlap and x265 is refused, naming it",
          arguments: ["chunk-start=5", "open-gop=1", "lossless=1:info=1", "chunk-end=9"])
    func userChunkKeysRefused(_ params: String) {
        let s = settings("libx265", overlap: (2, 0), params: params)
        #expect(throws: VSliceError.self) { try s.validate() }
        do { try s.validate() } catch {
            #expect(error.kind == .usage)
            let key = params.split(separator: ":").last!.split(separator: "=").first!
            #expect(error.description.contains(String(key)))
        }
        // Without buffers the same parameters are the user's to set.
        #expect(throws: Never.self) { try settings("libx265", overlap: (0, 0), params: params).validate() }
    }
}
