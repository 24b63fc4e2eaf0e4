import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

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
package struct AudioEncoderShape {
    package var rate: Int32
    package var sourceRate: Int32
    package var frameSize: Int64
    package var padding: Int64
    /// Packets the encoder makes beyond one per frame given (AAC's priming packet): measured on one frame of silence.
    package var extraPackets: Int

    package init(rate: Int32, sourceRate: Int32, frameSize: Int64, padding: Int64, extraPackets: Int) {
        self.rate = rate
        self.sourceRate = sourceRate
        self.frameSize = frameSize
        self.padding = padding
        self.extraPackets = extraPackets
    }

    package init(codec: String, decoder: Decoder, bitrate: Int64) throws(VSliceError) {
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
    package var whyOnePass: String? {
        if rate != sourceRate { return "resampled from \(sourceRate) to \(rate) Hz" }
        if frameSize <= 0 { return "the encoder has no fixed frame size" }
        return nil
    }
}
