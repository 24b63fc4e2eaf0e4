import Foundation
import VSliceSupport

// Audio in pieces: a re-encoded track cut on its encoder's frame grid, each piece encoded on its own with
// pre-roll, and the pieces' packets joined into the single pass's track (see docs/audio-pieces.md).

/// Where a track's pieces start, on the encoder's frame grid: about `pieceSamples` each, spread evenly, the
/// last running to the track's end. One piece means the track is encoded in one pass.
public struct AudioPieceLayout: Sendable, Equatable {
    /// Each piece's first sample (a multiple of the frame size), ascending, starting at 0.
    public var starts: [Int64]

    public init(starts: [Int64]) { self.starts = starts }

    /// Pieces are never shorter than `minimumFrames` frames (their pre-roll and post-roll would cost more than
    /// they save); a track shorter than about two pieces is one.
    public static func make(totalSamples: Int64, frameSize: Int64, pieceSamples: Int64, minimumFrames: Int64 = 16) -> AudioPieceLayout {
        guard totalSamples > 0, frameSize > 0, pieceSamples > 0 else { return AudioPieceLayout(starts: [0]) }
        let frames = (totalSamples + frameSize - 1) / frameSize
        let perPiece = max(minimumFrames, (pieceSamples + frameSize / 2) / frameSize, 1)
        let count = max(1, min((frames + perPiece / 2) / perPiece, frames / max(minimumFrames, 1)))
        return AudioPieceLayout(starts: (0..<count).map { k in (k * frames / count) * frameSize })
    }

    public var count: Int { starts.count }
}

/// Which encoders' pieces join into the single pass's stream, and the pre-roll each needs (frames encoded
/// before a piece's first kept frame and dropped, so the encoder's state — the MDCT overlap, the psychoacoustic
/// model, the rate control — is warm where the kept packets start). Measured: docs/audio-pieces.md.
public enum AudioJoin {
    /// Frames encoded after a piece's last kept frame and dropped: the last kept packets are made with the
    /// real next samples in the encoder's look-ahead, as in the single pass.
    package static let postroll: Int64 = 2
    /// Source frames decoded before a piece's first laid frame (and after a seek), so the decoder's output
    /// there equals the single pass's (its own overlap and bit reservoir filled).
    package static let decoderWarmup = 16

    /// How a piece's encoder is warmed up before its first kept frame: `silence` frames of digital silence, then
    /// `frames` frames of the track (at least `seconds` of them), all encoded and dropped.
    package struct Warmup: Sendable {
        package var frames: Int64
        package var seconds: Double = 0
        package var silence: Int64 = 0
    }

    /// The warm-up by encoder, for those whose pieces join into the single pass's stream: frames that decode
    /// given the frame before alone (no bit reservoir reaching across frames, no prediction from earlier
    /// frames), a fixed frame size, and packets timed frame time − priming. AC-3, E-AC-3 and MP2 keep no state
    /// across frames but the filter bank's: their pieces are bit-identical to the single pass from one frame of
    /// pre-roll on. FFmpeg's AAC encoder joins without a click from 4 frames of pre-roll on, but a fresh encoder
    /// starts with an empty bit reservoir model, which its bit demand fills by a few bits a frame: it codes the
    /// first 10–20 s 1–3 dB worse than the single pass, which has long filled it. A few frames of silence
    /// (which cost no bits) fill it at once; the pre-roll then lets its rate control and window decisions settle
    /// on the track itself. Measured: docs/audio-pieces.md.
    package static let warmup: [String: Warmup] = [
        "aac": Warmup(frames: 64, silence: 8), "ac3": Warmup(frames: 2), "eac3": Warmup(frames: 2), "mp2": Warmup(frames: 2),
    ]

    /// The warm-up for `codec` at `rate` with frames of `frameSize`: pre-roll and silence, in frames.
    /// `VSLICE_AUDIO_PREROLL_FRAMES` and `VSLICE_AUDIO_SILENCE_FRAMES` override them (to measure what is needed).
    package static func warmupFrames(_ codec: String, rate: Int32, frameSize: Int64) -> (preroll: Int64, silence: Int64)? {
        guard let w = warmup[codec], frameSize > 0 else { return nil }
        let env = ProcessInfo.processInfo.environment
        func given(_ name: String) -> Int64? { env[name].flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil } }
        let preroll = given("VSLICE_AUDIO_PREROLL_FRAMES") ?? max(w.frames, Int64((w.seconds * Double(rate) / Double(frameSize)).rounded(.up)))
        return (preroll, given("VSLICE_AUDIO_SILENCE_FRAMES") ?? w.silence)
    }

    /// Why `codec`'s pieces are not joined (nil: they are).
    public static func whyOnePass(_ codec: String) -> String? {
        if warmup[codec] != nil { return nil }
        switch codec {
        case "libmp3lame": return "MP3's bit reservoir lets a frame's data start in the frames before it"
        case "libopus": return "Opus predicts each frame's band energies from the frames before (pieces click below a second of pre-roll)"
        case "libvorbis": return "Vorbis's block sizes vary and each block's overlap depends on its neighbours'"
        case "flac", "alac": return "a lossless encode is cheap, and FLAC numbers its frames from the stream's start"
        default: return codec.hasPrefix("pcm_") ? "PCM costs nothing to encode" : "not measured to join cleanly"
        }
    }

    /// Samples per piece for `--audio-piece-seconds` (nil: the default; 0: never in pieces) at `rate`.
    package static func pieceSamples(seconds: Double?, rate: Int32) -> Int64 {
        let s = seconds ?? TranscodeSettings.defaultAudioPieceSeconds
        return s > 0 ? Int64((s * Double(rate)).rounded()) : 0
    }
}

/// One audio piece: everything a worker needs besides the input to encode it into a sealed packet file
/// (`AudioPieceEncoder`), as a segment plan is for a video segment.
public struct AudioPiece: Codable, Sendable, Equatable {
    /// Its number among the task's audio pieces (ledger row `TASK_audio_ORDER`).
    public var order: Int
    /// The source stream, and its number among the source's audio tracks.
    public var stream: Int
    public var track: Int
    /// Its number in its track, and the track's piece count.
    public var index: Int
    public var count: Int
    public var codec: String
    public var bitrate: Int64
    /// Decoding starts at the packet at or before this time (the stream's time base); nil: at the start.
    public var seek: Int64?
    /// The first decoded frame laid on the timeline (its timestamp); nil: the first. Frames decoded before it
    /// only warm the decoder up.
    public var anchor: Int64?
    /// The timeline as the single pass has it just before that frame (its frame size, start and position).
    public var timeline: AudioTimeline
    /// Frames of digital silence encoded (and dropped) before the first fed sample, to warm the encoder up.
    public var silence: Int64 = 0
    /// The samples encoded: positions [feedFrom, feedTo) (nil: to the track's end).
    public var feedFrom: Int64
    public var feedTo: Int64?
    /// The packets kept: those made from frames starting in [keepFrom, keepTo) (nil: to the end).
    public var keepFrom: Int64
    public var keepTo: Int64?
    /// How many packets it keeps, and the track's length in samples (where the last piece ends).
    public var packets: Int
    public var trackSamples: Int64

    public var isLast: Bool { keepTo == nil }

    package init(order: Int, stream: Int, track: Int, index: Int, count: Int, codec: String, bitrate: Int64,
                 seek: Int64? = nil, anchor: Int64? = nil, timeline: AudioTimeline, silence: Int64 = 0,
                 feedFrom: Int64, feedTo: Int64? = nil, keepFrom: Int64, keepTo: Int64? = nil, packets: Int,
                 trackSamples: Int64) {
        self.order = order
        self.stream = stream
        self.track = track
        self.index = index
        self.count = count
        self.codec = codec
        self.bitrate = bitrate
        self.seek = seek
        self.anchor = anchor
        self.timeline = timeline
        self.silence = silence
        self.feedFrom = feedFrom
        self.feedTo = feedTo
        self.keepFrom = keepFrom
        self.keepTo = keepTo
        self.packets = packets
        self.trackSamples = trackSamples
    }
}

/// What `vslice plan` says of one kept audio track.
public struct AudioTrackPlan: Codable, Sendable {
    /// Its number among the source's audio tracks, and its stream.
    public var track: Int
    public var stream: Int
    /// The encoder; nil: stream-copied (or, where the output's container cannot hold it, re-encoded to aac).
    public var codec: String?
    /// Pieces it is encoded in (1: one pass; 0: copied).
    public var pieces: Int
    /// The pieces' length, seconds (about; the last takes the rest).
    public var pieceSeconds: Double?
    /// Why one pass, when it is.
    public var onePass: String?

    package init(track: Int, stream: Int, codec: String? = nil, pieces: Int, pieceSeconds: Double? = nil,
                 onePass: String? = nil) {
        self.track = track
        self.stream = stream
        self.codec = codec
        self.pieces = pieces
        self.pieceSeconds = pieceSeconds
        self.onePass = onePass
    }
}


/// Where decoded audio goes on its track's timeline. Positions count samples at the encoder's rate from the
/// track's first decoded sample, whose time is `start` (1/rate). A frame whose timestamp lies more than one
/// encoder frame after where the samples so far end is preceded by silence up to it (a hole in the source);
/// otherwise it follows on, so timestamps that jitter by less (Matroska's, rounded to milliseconds) move nothing.
/// The single pass and every audio piece follow this one rule, so a piece started at a frame the map recorded
/// lays each sample exactly where the single pass does.
public struct AudioTimeline: Codable, Sendable, Equatable {
    /// A hole longer than this many samples becomes silence (the encoder's frame size).
    public var holeThreshold: Int64
    /// The first decoded frame's time (1/rate); nil until a frame was seen.
    public var start: Int64? = nil
    /// Samples laid so far, silence included: the position of the next one.
    public var laid: Int64 = 0

    public init(holeThreshold: Int64, start: Int64? = nil, laid: Int64 = 0) {
        self.holeThreshold = holeThreshold
        self.start = start
        self.laid = laid
    }

    /// The silence to lay before a frame starting at `time` (1/rate; nil: the frame has no timestamp), which
    /// comes after `pending` samples still held by the converter. The first frame sets `start`.
    public mutating func silence(before time: Int64?, pending: Int64 = 0) -> Int64 {
        guard let start else {
            start = time ?? 0
            return 0
        }
        guard let time else { return 0 }
        let gap = time - start - (laid + pending)
        return gap > holeThreshold ? gap : 0
    }
}
