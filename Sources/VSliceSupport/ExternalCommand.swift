import Foundation

/// Runs a scheduler's command-line tool (never ffmpeg: media work stays in process).
package enum ExternalCommand {
    package struct Result {
        package var status: Int32
        package var stdout: String
        package var stderr: String
    }

    /// The absolute path of `tool` on PATH, or nil.
    package static func find(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The running vslice binary, absolute (what the workers run).
    package static var currentExecutable: String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return Paths.absolute(CommandLine.arguments[0])
    }

    /// A word for /bin/sh, single-quoted.
    package static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Runs `tool` with `args` (this process's environment), waits at most `timeout` seconds.
    package static func run(_ tool: String, _ args: [String], timeout: Double) throws(VSliceError) -> Result {
        guard let path = find(tool) else {
            throw VSliceError(.processing, "run \(tool)", reason: "\(tool) is not on PATH")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw VSliceError(.processing, "run \(tool)", reason: plainReason(error))
        }
        // Read both pipes while it runs, so a chatty tool cannot fill one and block.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        Thread {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }.start()
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + timeout)
        timer.setEventHandler { if p.isRunning { p.terminate() } }
        timer.resume()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        timer.cancel()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }
}
