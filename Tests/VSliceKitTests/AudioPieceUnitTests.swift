import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

@Suite("audio pieces: layout, timeline rule, piece plans")
struct AudioPieceUnitTests {
    @Test("pieces start on the frame grid, spread evenly, about the asked length, never below the minimum")
    func layout() {
        // 60 s at 48 kHz in 1024-sample frames (2813 frames), 10 s pieces: 6 pieces of 468 or 469 frames.
        let l = AudioPieceLayout.make(totalSamples: 2_880_000, frameSize: 1024, pieceSamples: 480_000)
        #expect(l.count == 6)
        #expect(l.starts.first == 0)
        #expect(l.starts.allSatisfy { $0 % 1024 == 0 })
        let lengths = zip(l.starts, l.starts.dropFirst() + [2813 * 1024]).map { ($1 - $0) / 1024 }
        #expect(lengths.allSatisfy { $0 == 468 || $0 == 469 }, "\(lengths)")
        // Shorter than about two pieces: one (one pass). 1.4 pieces → 1, 1.6 → 2.
        #expect(AudioPieceLayout.make(totalSamples: 672_000, frameSize: 1024, pieceSamples: 480_000).count == 1)
        #expect(AudioPieceLayout.make(totalSamples: 768_000, frameSize: 1024, pieceSamples: 480_000).count == 2)
        // Tiny pieces are held at 16 frames; nothing to cut: one piece.
        #expect(AudioPieceLayout.make(totalSamples: 48_000, frameSize: 1024, pieceSamples: 100).count == 2)
        #expect(AudioPieceLayout.make(totalSamples: 0, frameSize: 1024, pieceSamples: 480_000).starts == [0])
        #expect(AudioPieceLayout.make(totalSamples: 48_000, frameSize: 1024, pieceSamples: 0).starts == [0])
    }

    @Test("the timeline: the first frame sets the start; a hole longer than a frame becomes silence, jitter does not")
    func timeline() {
        var t = AudioTimeline(holeThreshold: 1024)
        #expect(t.silence(before: 5000) == 0)
        #expect(t.start == 5000)
        t.laid = 1024
        // Matroska's millisecond rounding: 20 samples late, follows on.
        #expect(t.silence(before: 5000 + 1024 + 20) == 0)
        t.laid = 2048
        // Exactly a frame late: not a hole; more: silence up to the frame.
        #expect(t.silence(before: 5000 + 2048 + 1024) == 0)
        #expect(t.silence(before: 5000 + 2048 + 48_000) == 48_000)
        // A frame without a timestamp follows on; samples the converter holds count as laid.
        #expect(t.silence(before: nil) == 0)
        #expect(t.silence(before: 5000 + 2048 + 2000, pending: 1000) == 0)
        #expect(t.silence(before: 5000 + 2048 + 2000, pending: 0) == 2000)
    }

    /// A map of `frames` decoded frames of 1024 samples, timestamps in 1/48000 from `start`, with a hole of
    /// `hole.samples` before frame `hole.at`.
    func map(frames: Int, start: Int64 = 0, hole: (at: Int, samples: Int64)? = nil) -> AudioTrackMap {
        let shape = AudioEncoderShape(rate: 48000, sourceRate: 48000, frameSize: 1024, padding: 1024, extraPackets: 1)
        var m = AudioTrackMap(timeline: AudioTimeline(holeThreshold: 1024), shape: shape)
        var ts = start
        for i in 0..<frames {
            if let hole, hole.at == i { ts += hole.samples }
            let before = m.timeline.laid
            m.timeline.laid += m.timeline.silence(before: ts) + 1024
            m.marks.append(.init(time: ts, laidBefore: before))
            ts += 1024
        }
        return m
    }

    @Test("piece plans: kept ranges partition the track, pre-roll and post-roll on the grid, anchors where the map laid them")
    func piecePlans() {
        let m = map(frames: 600, start: 960, hole: (at: 300, samples: 10_000))
        #expect(m.totalSamples == 600 * 1024 + 10_000)
        let layout = AudioPieceLayout.make(totalSamples: m.totalSamples, frameSize: 1024, pieceSamples: 100 * 1024)
        let pieces = m.pieces(layout, stream: 1, track: 0, codec: "aac", bitrate: 128_000, firstOrder: 3, preroll: 8, silence: 4)
        #expect(pieces.map(\.order) == Array(3..<(3 + layout.count)))
        // Packets: one per frame of the track, plus the priming packet, as the single pass makes.
        let frames = (m.totalSamples + 1023) / 1024
        #expect(pieces.map(\.packets).reduce(0, +) == Int(frames) + 1)
        for (k, p) in pieces.enumerated() {
            #expect(p.keepFrom == layout.starts[k])
            #expect(p.keepTo == (k + 1 < pieces.count ? layout.starts[k + 1] : nil))
            #expect(p.feedFrom == (k == 0 ? 0 : p.keepFrom - 8 * 1024))
            // Silence warms an encoder up only where the pre-roll does not reach the track's start.
            #expect(p.silence == (p.feedFrom > 0 ? 4 : 0))
            if let keepTo = p.keepTo { #expect(p.feedTo == keepTo + 2 * 1024) }
            guard k > 0, let anchor = p.anchor else { continue }
            // The anchor is the last frame laid at or before the piece's first fed sample, with the timeline there.
            let i = m.marks.firstIndex { $0.time == anchor }!
            #expect(m.marks[i].laidBefore <= p.feedFrom)
            #expect(i + 1 == m.marks.count || m.marks[i + 1].laidBefore > p.feedFrom)
            #expect(p.timeline == AudioTimeline(holeThreshold: 1024, start: 960, laid: m.marks[i].laidBefore))
            // Decoding starts 16 frames earlier (or at the start).
            #expect(p.seek == (i > 16 ? m.marks[i - 16].time : nil))
        }
        // A piece whose pre-roll starts inside the hole (the hole spans positions 300 × 1024 … + 10 000) anchors at
        // the frame after it, with the timeline before the hole's silence.
        let around = m.pieces(AudioPieceLayout(starts: [0, 150 * 1024, 309 * 1024, 450 * 1024]), stream: 1, track: 0, codec: "aac",
                              bitrate: 128_000, firstOrder: 0, preroll: 8)
        #expect(around[2].feedFrom == 301 * 1024)
        #expect(around[2].anchor == m.marks[300].time)
        #expect(around[2].timeline.laid == 300 * 1024)
        #expect(around[2].seek == m.marks[284].time)
    }

    @Test("which encoders are cut: aac, ac3, eac3, mp2; one pass for the others, with the reason")
    func codecs() {
        for c in ["aac", "ac3", "eac3", "mp2"] { #expect(AudioJoin.whyOnePass(c) == nil) }
        for c in ["libmp3lame", "libopus", "libvorbis", "flac", "alac", "pcm_s16le"] { #expect(AudioJoin.whyOnePass(c) != nil) }
        // AAC: 64 frames of pre-roll after 8 of silence; AC-3: 2 frames, no silence.
        #expect(AudioJoin.warmupFrames("aac", rate: 48000, frameSize: 1024)! == (64, 8))
        #expect(AudioJoin.warmupFrames("ac3", rate: 48000, frameSize: 1536)! == (2, 0))
        #expect(AudioJoin.warmupFrames("libmp3lame", rate: 48000, frameSize: 1152) == nil)
        #expect(TaskID("t").audioPiece(4) == "t_audio_4")
    }
}

