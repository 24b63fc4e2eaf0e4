import CFFmpeg
import Foundation
import Synchronization
import VSliceModel
import VSliceSupport

/// Where FFmpeg's own encoder and decoder of an audio codec put the sound, in samples, measured by encoding
/// silence and decoding it back in memory: what a container that signals no encoder delay (Matroska, for
/// every codec but Opus) leaves to the decoder.
/// - `dropped`: samples the decoder swallows after the first packet's time (Vorbis: its first block, 128 at
///   48 kHz), so its first decoded sample is this much after the stream's start.
/// - `priming`: samples the decoder returns before the encoder's first input sample (AAC 1024, MP3 1105,
///   MP2 481, AC-3 and E-AC-3 256; Vorbis, FLAC, ALAC, PCM 0).
package enum CodecDelay {
    package struct Delay: Sendable, Equatable {
        package var dropped: Int64 = 0
        package var priming: Int64 = 0
    }

    private static let cache = Mutex<[String: Delay]>([:])

    package static func of(_ id: AVCodecID, rate: Int32, channels: Int32) -> Delay {
        let key = "\(id.rawValue) \(rate) \(channels)"
        if let d = cache.withLock({ $0[key] }) { return d }
        let d = measure(id, rate: rate, channels: channels) ?? Delay()
        cache.withLock { $0[key] = d }
        return d
    }

    /// nil when the codec has no encoder or decoder here, or either refuses the format.
    package static func measure(_ id: AVCodecID, rate: Int32, channels: Int32) -> Delay? {
        guard rate > 0, let enc = avcodec_find_encoder(id), let dec = avcodec_find_decoder(id),
              enc.pointee.type == AVMEDIA_TYPE_AUDIO else { return nil }
        var ec = avcodec_alloc_context3(enc), dc = avcodec_alloc_context3(dec)
        var par = avcodec_parameters_alloc()
        var frame = av_frame_alloc(), pkt = av_packet_alloc()
        defer {
            avcodec_free_context(&ec)
            avcodec_free_context(&dc)
            avcodec_parameters_free(&par)
            av_frame_free(&frame)
            av_packet_free(&pkt)
        }
        guard let ec, let dc, let par, let frame, let pkt else { return nil }

        let r = AudioFormat.nearestSampleRate(enc, to: rate)
        ec.pointee.sample_rate = r
        av_channel_layout_default(&ec.pointee.ch_layout, channels > 0 && channels <= 2 ? channels : 2)
        ec.pointee.sample_fmt = enc.pointee.sample_fmts?.pointee ?? AV_SAMPLE_FMT_FLTP
        ec.pointee.time_base = AVRational(num: 1, den: r)
        ec.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        guard avcodec_open2(ec, enc, nil) >= 0,
              avcodec_parameters_from_context(par, ec) >= 0 else { return nil }
        // As a Matroska demuxer gives it: no encoder delay signalled.
        par.pointee.initial_padding = 0
        guard avcodec_parameters_to_context(dc, par) >= 0 else { return nil }
        dc.pointee.pkt_timebase = ec.pointee.time_base
        guard avcodec_open2(dc, dec, nil) >= 0 else { return nil }

        let size = ec.pointee.frame_size > 0 ? ec.pointee.frame_size : 1024
        var firstPacket: Int64? = nil
        var firstFrame: Int64? = nil
        func decode(_ p: UnsafeMutablePointer<AVPacket>?) {
            guard avcodec_send_packet(dc, p) >= 0 else { return }
            while firstFrame == nil && avcodec_receive_frame(dc, frame) >= 0 {
                if frame.pointee.nb_samples > 0 {
                    let t = frame.pointee.best_effort_timestamp
                    firstFrame = t != AV_NOPTS ? t : frame.pointee.pts
                }
                av_frame_unref(frame)
            }
        }
        func drain() {
            while firstFrame == nil && avcodec_receive_packet(ec, pkt) >= 0 {
                if firstPacket == nil { firstPacket = pkt.pointee.pts }
                decode(pkt)
                av_packet_unref(pkt)
            }
        }
        // Up to a second of silence, until the decoder returns its first samples.
        var sent: Int64 = 0
        while firstFrame == nil && sent < Int64(r) {
            frame.pointee.nb_samples = size
            frame.pointee.format = ec.pointee.sample_fmt.rawValue
            frame.pointee.sample_rate = r
            guard av_channel_layout_copy(&frame.pointee.ch_layout, &ec.pointee.ch_layout) >= 0,
                  av_frame_get_buffer(frame, 0) >= 0 else { return nil }
            av_samples_set_silence(frame.pointee.extended_data, 0, size, ec.pointee.ch_layout.nb_channels, ec.pointee.sample_fmt)
            frame.pointee.pts = sent
            sent += Int64(size)
            let ret = avcodec_send_frame(ec, frame)
            av_frame_unref(frame)
            guard ret >= 0 else { return nil }
            drain()
        }
        if firstFrame == nil {
            _ = avcodec_send_frame(ec, nil)
            drain()
            decode(nil)
        }
        guard let firstPacket, let firstFrame, firstPacket != AV_NOPTS, firstFrame != AV_NOPTS else { return nil }
        // In the track's own rate (the encoder may have taken another).
        func scaled(_ n: Int64) -> Int64 { r == rate ? n : av_rescale(n, Int64(rate), Int64(r)) }
        return Delay(dropped: scaled(max(0, firstFrame - firstPacket)), priming: scaled(max(0, -firstFrame)))
    }
}
