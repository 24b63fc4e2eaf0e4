import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Frames on their way into a processor's stdin: a header or FRAME line, then each frame's planes written
/// straight from the frame's own memory (its rows gathered by `writev`) — nothing is copied on this side.
/// Holds at most what one `queue` call gave it until it is written.
package final class PipeWriter {
    private var chunks: [(base: UnsafeRawPointer, count: Int)] = []
    private var next = 0
    private var offsetInNext = 0
    /// What the chunks point into: frames and byte buffers kept alive until written.
    private var owners: [AnyObject] = []
    /// Bytes of the largest write(v) call, so one call can fill a pipe of 1 MiB.
    private static let batch = 1024

    package var isEmpty: Bool { next >= chunks.count }

    /// Queues `text`'s bytes.
    package func queue(_ text: String) {
        let bytes = ByteBox(Array(text.utf8))
        owners.append(bytes)
        bytes.bytes.withUnsafeBytes { chunks.append(($0.baseAddress!, $0.count)) }
    }

    /// Queues the planes of `frame` (of `format`), row by row where its lines are padded.
    package func queue(_ frame: Frame, format: AVPixelFormat) throws(VSliceError) {
        let held = Frame()
        try ffCheck(av_frame_ref(held.ptr, frame.ptr), "hold a frame for the processor")
        owners.append(held)
        let f = held.ptr.pointee
        guard let desc = av_pix_fmt_desc_get(format) else { return }
        let planes = Int(av_pix_fmt_count_planes(format))
        withUnsafePointer(to: f.data) { dataTuple in
            withUnsafePointer(to: f.linesize) { lineTuple in
                dataTuple.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { data in
                    lineTuple.withMemoryRebound(to: Int32.self, capacity: 8) { lines in
                        for p in 0..<planes {
                            let rowBytes = Int(av_image_get_linesize(format, f.width, Int32(p)))
                            let chroma = p == 1 || p == 2
                            let rows = chroma ? (Int(f.height) + (1 << desc.pointee.log2_chroma_h) - 1) >> desc.pointee.log2_chroma_h
                                : Int(f.height)
                            guard let base = data[p] else { continue }
                            let stride = Int(lines[p])
                            if stride == rowBytes {
                                chunks.append((UnsafeRawPointer(base), rowBytes * rows))
                            } else {
                                for r in 0..<rows { chunks.append((UnsafeRawPointer(base + r * stride), rowBytes)) }
                            }
                        }
                    }
                }
            }
        }
    }

    package enum Outcome { case wrote, full, broken }

    /// Writes what the pipe takes now. `.broken`: the reader is gone (EPIPE); what was queued is dropped.
    package func write(to fd: Int32) -> Outcome {
        while !isEmpty {
            var iov: [iovec] = []
            var k = next
            while k < chunks.count && iov.count < Self.batch {
                let skip = k == next ? offsetInNext : 0
                iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: chunks[k].base + skip), iov_len: chunks[k].count - skip))
                k += 1
            }
            let n = writev(fd, iov, Int32(iov.count))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return .full }
                drop()
                return .broken
            }
            advance(by: n)
        }
        drop()
        return .wrote
    }

    private func advance(by written: Int) {
        var left = written
        while left > 0 && next < chunks.count {
            let rest = chunks[next].count - offsetInNext
            if left >= rest {
                left -= rest
                next += 1
                offsetInNext = 0
            } else {
                offsetInNext += left
                left = 0
            }
        }
    }

    /// Forgets everything queued (and releases the frames held).
    package func drop() {
        chunks.removeAll(keepingCapacity: true)
        owners.removeAll()
        next = 0
        offsetInNext = 0
    }

    private final class ByteBox {
        package let bytes: [UInt8]
        package init(_ b: [UInt8]) { bytes = b }
    }
}

/// A processor's stdout read into whole frames: a Y4M stream (its header line, then a FRAME line and the planes
/// of each frame) or raw frames. Lines are read a few bytes at a time (they are short and rare); each frame's
/// planes are read straight into a buffer of its own, which becomes the frame's memory.
package final class PipeReader {
    package enum Item {
        /// The Y4M header line (without its newline); call `expect(frameBytes:)` before reading on.
        case header(String)
        /// A whole frame's bytes.
        case frame(UnsafeMutablePointer<AVBufferRef>)
    }

    private enum State { case header, tag, payload }
    private var state: State
    private var line: [UInt8] = []
    private var buffer: UnsafeMutablePointer<AVBufferRef>?
    private var filled = 0
    /// Frame buffers are reused once the encoder is done with them (a fresh 3 MB buffer per 1080p frame costs
    /// the kernel hundreds of page faults each).
    private var pool: OpaquePointer?
    package private(set) var frameBytes: Int
    private let y4m: Bool

    /// `y4m`: a header first, and a FRAME line before each frame; else raw frames of `frameBytes`.
    package init(y4m: Bool, frameBytes: Int = 0) {
        self.y4m = y4m
        state = y4m ? .header : .payload
        self.frameBytes = 0
        if frameBytes > 0 { expect(frameBytes: frameBytes) }
    }

    deinit {
        av_buffer_unref(&buffer)
        av_buffer_pool_uninit(&pool)
    }

    /// The size of every frame, once the header said it.
    package func expect(frameBytes: Int) {
        guard frameBytes != self.frameBytes || pool == nil else { return }
        self.frameBytes = frameBytes
        av_buffer_pool_uninit(&pool)
        pool = av_buffer_pool_init(frameBytes, nil)
    }

    /// Bytes read of an unfinished line or frame (what a stream that ends now leaves cut).
    package var partialBytes: Int { line.count + filled }

    /// A stream ended whole: the next bytes are another stream's header (`--process-persistent`).
    package func nextStream() {
        if y4m { state = .header }
    }

    /// Forgets what was read of an unfinished stream (its program is gone).
    package func reset() {
        line.removeAll(keepingCapacity: true)
        av_buffer_unref(&buffer)
        filled = 0
        state = y4m ? .header : .payload
    }

    package enum Outcome { case item(Item), wouldBlock, endOfFile }

    /// Reads until an item is whole, the pipe is empty, or it ends.
    package func read(from fd: Int32) throws(VSliceError) -> Outcome {
        while true {
            switch state {
            case .header, .tag:
                if let done = try readLine(fd) { return done }
                let text = String(decoding: line, as: UTF8.self)
                line.removeAll(keepingCapacity: true)
                if state == .header {
                    state = .tag
                    return .item(.header(text))
                }
                guard text.hasPrefix("FRAME") else { throw malformedOutput("a frame does not start with FRAME ('\(text.prefix(40))')") }
                if text.split(separator: " ").dropFirst().contains(where: { ["W", "H", "C"].contains($0.first) }) {
                    throw malformedOutput("the processor changed its frame size or format mid-stream ('\(text.prefix(60))')")
                }
                state = .payload
            case .payload:
                guard frameBytes > 0 else { return .wouldBlock }
                if buffer == nil {
                    guard let b = av_buffer_pool_get(pool) else {
                        throw VSliceError(.processing, "read the processor's output", reason: "out of memory")
                    }
                    buffer = b
                    filled = 0
                }
                let n = Glibc.read(fd, buffer!.pointee.data + filled, frameBytes - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
                    return .endOfFile
                }
                if n == 0 { return .endOfFile }
                filled += n
                if filled == frameBytes {
                    let whole = buffer!
                    buffer = nil
                    filled = 0
                    state = y4m ? .tag : .payload
                    return .item(.frame(whole))
                }
            }
        }
    }

    /// Reads a line: nil once it is whole (in `line`), else how the read ended. A FRAME line is asked for six
    /// bytes at once ("FRAME\n"), then byte by byte if it goes on; a header byte by byte.
    private func readLine(_ fd: Int32) throws(VSliceError) -> Outcome? {
        while line.last != 0x0A {
            if line.count >= Y4MHeader.maxLine { throw malformedOutput("a line of the output is longer than \(Y4MHeader.maxLine) bytes") }
            let want = state == .tag && line.count < 6 ? 6 - line.count : 1
            var chunk = [UInt8](repeating: 0, count: want)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, want) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK ? .wouldBlock : .endOfFile
            }
            if n == 0 { return .endOfFile }
            line.append(contentsOf: chunk[0..<n])
            if state == .header && line.count == 1 && line[0] != UInt8(ascii: "Y") {
                throw malformedOutput("the output does not start with a YUV4MPEG2 header")
            }
        }
        line.removeLast()
        return nil
    }
}
