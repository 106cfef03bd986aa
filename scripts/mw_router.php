<?php
// Router for `php -S 127.0.0.1:PORT -t /usr/share/mediawiki scripts/mw_router.php`
// (demo_wiki.WikiServer). Serves /images/... from the wiki's own upload directory
// (dirname(MW_CONFIG_FILE)/images) as a static web server would, with Range
// requests (206); everything else is left to php -S. The deleted-files store and
// anything outside the directory answer 404.
//
// For tests: DEMO_WIKI_FILE_RATE (bytes a second) paces the files' bytes, so that
// a download can be stopped half-way; DEMO_WIKI_FILE_LOG names a file that gets a
// JSON line per file request (path, first byte, bytes sent), also when the client
// went away before the end.
$path = rawurldecode( parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ) );
if ( strncmp( $path, '/images/', 8 ) !== 0 ) {
	return false;
}
$root = realpath( dirname( getenv( 'MW_CONFIG_FILE' ) ) . '/images' );
$file = $root === false ? false : realpath( $root . substr( $path, 7 ) );
if ( $file === false || !is_file( $file )
	|| strncmp( $file, $root . '/', strlen( $root ) + 1 ) !== 0
	|| strncmp( $file, $root . '/deleted/', strlen( $root ) + 9 ) === 0
) {
	http_response_code( 404 );
	header( 'Content-Type: text/plain' );
	echo "404 Not Found\n";
	return true;
}
$size = filesize( $file );
$start = 0;
$end = $size - 1;
if ( preg_match( '/^bytes=(\d+)-(\d*)$/', $_SERVER['HTTP_RANGE'] ?? '', $m ) ) {
	$start = (int)$m[1];
	if ( $m[2] !== '' ) {
		$end = min( (int)$m[2], $size - 1 );
	}
	if ( $start >= $size ) {
		http_response_code( 416 );
		header( "Content-Range: bytes */$size" );
		return true;
	}
	http_response_code( 206 );
	header( "Content-Range: bytes $start-$end/$size" );
}
header( 'Content-Type: ' . ( ( new finfo( FILEINFO_MIME_TYPE ) )->file( $file ) ?: 'application/octet-stream' ) );
header( 'Content-Length: ' . ( $end - $start + 1 ) );
header( 'Accept-Ranges: bytes' );
if ( $_SERVER['REQUEST_METHOD'] === 'HEAD' ) {
	return true;
}
$sent = 0;
if ( getenv( 'DEMO_WIKI_FILE_LOG' ) ) {
	register_shutdown_function( function () use ( $path, $start, &$sent ) {
		file_put_contents( getenv( 'DEMO_WIKI_FILE_LOG' ), json_encode(
			[ 'path' => $path, 'start' => $start, 'sent' => $sent ] ) . "\n", FILE_APPEND | LOCK_EX );
	} );
}
$rate = (int)( getenv( 'DEMO_WIKI_FILE_RATE' ) ?: 0 );
$in = fopen( $file, 'rb' );
fseek( $in, $start );
$left = $end - $start + 1;
$chunk = $rate > 0 ? max( 1024, intdiv( $rate, 20 ) ) : 1 << 20;
while ( $left > 0 && !connection_aborted() ) {
	$data = fread( $in, min( $chunk, $left ) );
	if ( $data === false || $data === '' ) {
		break;
	}
	echo $data;
	flush();
	$sent += strlen( $data );
	$left -= strlen( $data );
	if ( $rate > 0 ) {
		usleep( (int)( 1e6 * strlen( $data ) / $rate ) );
	}
}
fclose( $in );
return true;
