import CFFmpeg
import Foundation

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
    static let postroll: Int64 = 2
    /// Source frames decoded before a piece's first laid frame (and after a seek), so the decoder's output
    /// there equals the single pass's (its own overlap and bit reservoir filled).
    static let decoderWarmup = 16

    /// How a piece's encoder is warmed up before its first kept frame: `silence` frames of digital silence, then
    /// `frames` frames of the track (at least `seconds` of them), all encoded and dropped.
    struct Warmup: Sendable {
        var frames: Int64
        var seconds: Double = 0
        var silence: Int64 = 0
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
    static let warmup: [String: Warmup] = [
        "aac": Warmup(frames: 64, silence: 8), "ac3": Warmup(frames: 2), "eac3": Warmup(frames: 2), "mp2": Warmup(frames: 2),
    ]

    /// The warm-up for `codec` at `rate` with frames of `frameSize`: pre-roll and silence, in frames.
    /// `VSLICE_AUDIO_PREROLL_FRAMES` and `VSLICE_AUDIO_SILENCE_FRAMES` override them (to measure what is needed).
    static func warmupFrames(_ codec: String, rate: Int32, frameSize: Int64) -> (preroll: Int64, silence: Int64)? {
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
    static func pieceSamples(seconds: Double?, rate: Int32) -> Int64 {
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
}

extension AudioTrackPlan {
    /// The plan of every kept audio track: in pieces or one pass, and why. The sample count is the probe's
    /// estimate (a transcode counts the decoded samples, which may move a boundary case by one piece).
    public static func describe(source: String, probe: Probe, settings: TranscodeSettings) throws(VSliceError) -> [AudioTrackPlan] {
        let audio = probe.report.streams.filter { $0.type == "audio" }.map(\.index)
        guard let chosen = settings.selectedAudio(of: audio.count) else { return [] }
        let input = try InputFile(path: source)
        var plans: [AudioTrackPlan] = []
        for ordinal in chosen {
            let stream = audio[ordinal]
            guard !settings.copyAudio else {
                plans.append(AudioTrackPlan(track: ordinal, stream: stream, codec: nil, pieces: 0))
                continue
            }
            let codec = settings.audioCodec
            var plan = AudioTrackPlan(track: ordinal, stream: stream, codec: codec, pieces: 1)
            if let why = AudioJoin.whyOnePass(codec) { plan.onePass = why; plans.append(plan); continue }
            let decoder = try Decoder(stream: input.stream(stream), path: source, threads: 1)
            let sink = try AudioEncoderShape(codec: codec, decoder: decoder, bitrate: settings.audioBitrate)
            if let why = sink.whyOnePass { plan.onePass = why; plans.append(plan); continue }
            let span = probe.audioTracks.first { $0.stream == stream }?.span
            let samples = Int64(((span?.duration ?? 0) * Double(sink.rate)).rounded())
            let layout = AudioPieceLayout.make(totalSamples: samples, frameSize: sink.frameSize,
                                               pieceSamples: AudioJoin.pieceSamples(seconds: settings.audioPieceSeconds, rate: sink.rate))
            plan.pieces = layout.count
            if layout.count > 1 {
                plan.pieceSeconds = (Double(samples) / Double(layout.count) / Double(sink.rate) * 1000).rounded() / 1000
            } else {
                plan.onePass = (settings.audioPieceSeconds ?? 1) == 0 ? "--audio-piece-seconds 0" : "shorter than two pieces"
            }
            plans.append(plan)
        }
        return plans
    }
}

/// What an audio encoder set up for a source track (as `AudioSink` sets it up) works with: its rate, frame size
/// and priming. The encoder is opened to learn them, then closed.
struct AudioEncoderShape {
    var rate: Int32
    var sourceRate: Int32
    var frameSize: Int64
    var padding: Int64
    /// Packets the encoder makes beyond one per frame given (AAC's priming packet): measured on one frame of silence.
    var extraPackets: Int

    init(rate: Int32, sourceRate: Int32, frameSize: Int64, padding: Int64, extraPackets: Int) {
        self.rate = rate
        self.sourceRate = sourceRate
        self.frameSize = frameSize
        self.padding = padding
        self.extraPackets = extraPackets
    }

    init(codec: String, decoder: Decoder, bitrate: Int64) throws(VSliceError) {
        let encoder = try Encoder(name: codec, path: "(audio encoder)")
        var format = try AudioFormat(encoder: encoder, source: decoder.ctx, bitrate: bitrate)
        defer { format.release() }
        try encoder.open(options: [])
        let c = encoder.ctx.pointee
        rate = format.rate
        sourceRate = decoder.ctx.pointee.sample_rate
        frameSize = Int64(c.frame_size)
        padding = Int64(c.initial_padding)
        extraPackets = 0
        guard frameSize > 0 else { return }
        let frame = Frame(), packet = Packet()
        frame.ptr.pointee.nb_samples = c.frame_size
        frame.ptr.pointee.format = format.sampleFormat.rawValue
        frame.ptr.pointee.sample_rate = rate
        try ffCheck(av_channel_layout_copy(&frame.ptr.pointee.ch_layout, &format.layout), "set frame layout")
        try ffCheck(av_frame_get_buffer(frame.ptr, 0), "allocate audio frame")
        try ffCheck(av_samples_set_silence(frame.ptr.pointee.extended_data, 0, c.frame_size, format.layout.nb_channels, format.sampleFormat),
                    "fill silence")
        frame.pts = 0
        var packets = 0
        for input in [frame, nil] {
            _ = try encoder.send(input)
            while try encoder.receive(packet) == .ok { packets += 1 }
        }
        extraPackets = packets - 1
    }

    /// Why a track this encoder takes is encoded in one pass (nil: it can be cut): a resampled track's
    /// samples do not fall on the same grid when its conversion starts elsewhere; an encoder without a fixed
    /// frame size has no grid.
    var whyOnePass: String? {
        if rate != sourceRate { return "resampled from \(sourceRate) to \(rate) Hz" }
        if frameSize <= 0 { return "the encoder has no fixed frame size" }
        return nil
    }
}
